"""The install directory: one directory per key, its metadata file, and minor-version links.

``<install_dir>/<key>/`` holds one installation (the archive's ``python/``,
or ``python/install/`` for a full archive) with ``surefetch-python.json``
inside it; ``<install_dir>/<minor key>`` links to the newest installed patch
of that minor version; ``<install_dir>/.temp/`` is the temporary area, on
the same filesystem, so that placing an installation is a rename. Reading
this layout (`find`, `installed`) is light: no asyncio, no HTTP stack, no
catalog.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

METADATA_NAME = "surefetch-python.json"
TEMP_DIR = ".temp"


@dataclass(frozen=True, slots=True)
class Installation:
    """An installed Python: its ``key``, ``version``, ``path`` and ``executable``.

    ``url``, ``sha256``, ``build`` and ``installed_at`` come from its
    metadata file. The last fields describe the call that returned it:
    ``already_installed`` (nothing was downloaded), ``from_cache`` (the
    archive came from the cache), and the download's ``attempts``,
    ``retries``, ``resumed_bytes`` and ``elapsed_s``.

    Example:
        >>> i = Installation(key="cpython-3.12.4-linux-x86_64-gnu", version="3.12.4",
        ...                  path=Path("/p"), executable=Path("/p/bin/python3"))
        >>> sorted(i.to_json())[:3]
        ['already_installed', 'attempts', 'build']
    """

    key: str
    version: str
    path: Path
    executable: Path
    implementation: str = "cpython"
    variant: str | None = None
    url: str = ""
    sha256: str | None = None
    build: str | None = None
    installed_at: float = 0.0
    already_installed: bool = False
    from_cache: bool = True
    attempts: int = 0
    retries: int = 0
    resumed_bytes: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        """This installation as the ``--json`` output prints it.

        Example:
            >>> Installation(key="k", version="3", path=Path("/p"),
            ...              executable=Path("/p/x")).to_json()["path"]
            '/p'
        """
        record = asdict(self)
        record["path"] = str(self.path)
        record["executable"] = str(self.executable)
        return record


def default_install_dir() -> Path:
    """``SUREFETCH_PYTHON_INSTALL_DIR`` (or a config file), else the user data directory's
    ``surefetch/python``.

    Example:
        >>> default_install_dir().name
        'python'
    """
    from surefetch._config import PYTHON_INSTALL_DIR, resolve

    return Path(resolve(PYTHON_INSTALL_DIR))


def install_root(install_dir: str | os.PathLike[str] | None) -> Path:
    """``install_dir`` made absolute, or the default.

    Example:
        >>> install_root("/opt/py").as_posix()
        '/opt/py'
    """
    if install_dir is None:
        return default_install_dir()
    return Path(os.path.abspath(os.path.expanduser(os.fspath(install_dir))))


def executable_in(path: Path) -> Path:
    """The interpreter of the installation at ``path``.

    Example:
        >>> executable_in(Path("/p")).name in ("python3", "python.exe")
        True
    """
    if sys.platform == "win32":
        return path / "python.exe"
    return path / "bin" / "python3"


def read_installation(path: Path) -> Installation | None:
    """The installation at ``path``, or None if it is not a complete one (no metadata file).

    Example:
        >>> read_installation(Path("/nonexistent")) is None
        True
    """
    try:
        with open(path / METADATA_NAME, "rb") as file:
            meta = json.loads(file.read())
        return Installation(
            key=str(meta["key"]),
            version=str(meta["version"]),
            path=path,
            executable=executable_in(path),
            implementation=str(meta.get("implementation", "cpython")),
            variant=meta.get("variant"),
            url=str(meta.get("url", "")),
            sha256=meta.get("sha256"),
            build=meta.get("build"),
            installed_at=float(meta.get("installed_at", 0.0)),
            already_installed=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def metadata_bytes(installation: Installation) -> bytes:
    """The metadata file of ``installation``.

    Example:
        >>> b'"key"' in metadata_bytes(Installation(key="k", version="3", path=Path("/p"),
        ...                                          executable=Path("/p/x")))
        True
    """
    fields = ("key", "version", "implementation", "variant", "url", "sha256", "build")
    record: dict[str, object] = {name: getattr(installation, name) for name in fields}
    record["installed_at"] = installation.installed_at
    return json.dumps(record, indent=2).encode() + b"\n"


def installed(*, install_dir: str | os.PathLike[str] | None = None) -> list[Installation]:
    """The installations in ``install_dir``, newest version first.

    Example:
        >>> import tempfile
        >>> installed(install_dir=tempfile.mkdtemp())
        []
    """
    root = install_root(install_dir)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    found = []
    for name in names:
        path = root / name
        if name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue
        installation = read_installation(path)
        if installation is not None and installation.key == name:
            found.append(installation)
    return sorted(found, key=_order, reverse=True)


def _order(installation: Installation) -> tuple[object, ...]:
    from packaging.version import Version

    return (Version(installation.version), installation.key)


def find(request: str, *, install_dir: str | os.PathLike[str] | None = None) -> Installation | None:
    """The newest installed Python that fits ``request`` on this platform, or None.

    Light: it reads the install directory only (no catalog, no network).

    Example:
        >>> import tempfile
        >>> find("3.12", install_dir=tempfile.mkdtemp()) is None
        True
    """
    from surefetch._python.platform import this_platform
    from surefetch._python.requests import parse_request

    parsed = parse_request(request)
    platform = str(this_platform()) if parsed.platform is None else parsed.platform
    for installation in installed(install_dir=install_dir):
        if parsed.matches(
            implementation=installation.implementation,
            version=installation.version,
            variant=installation.variant,
            platform=installation.key.split("-", 2)[2],
        ) and installation.key.endswith(platform):
            return replace(installation, already_installed=True)
    return None


def update_minor_link(root: Path, minor: str) -> None:
    """Point ``root/minor`` at the newest installed patch of that minor version, or remove it.

    The link is replaced by a rename, so readers never see it missing. Call
    it holding the minor version's lock.
    """
    from surefetch._python.catalog import minor_key

    newest = next((i for i in installed(install_dir=root) if minor_key(i.key) == minor), None)
    link = root / minor
    if newest is None:
        if link.is_symlink():
            link.unlink()
        return
    temporary = root / TEMP_DIR / f"{minor}.link.{os.getpid()}"
    temporary.parent.mkdir(parents=True, exist_ok=True)
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(newest.key, temporary, target_is_directory=True)
    os.replace(temporary, link)
