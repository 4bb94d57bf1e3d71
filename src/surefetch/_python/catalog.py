"""The catalog of python-build-standalone builds: pbs-installer's table, or uv's downloads JSON.

Both become `Download` values; choosing among them (`select`) and moving
their URLs to a mirror (`mirrored`) are pure. pbs-installer is imported
only when its table is needed (it costs ~40 ms to load).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from packaging.version import InvalidVersion, Version

from surefetch._errors import ConfigError
from surefetch._python.errors import PythonNotFoundError
from surefetch._python.platform import Platform
from surefetch._python.requests import FREETHREADED, PythonRequest

# The part of a python-build-standalone URL that a mirror replaces ends here.
RELEASE_MARK = "/releases/download/"

# The build date in a file name: cpython-3.12.4+20240726-x86_64-unknown-linux-gnu-...
_BUILD = re.compile(r"\+(?P<build>[0-9]{8})-")


@dataclass(frozen=True, slots=True)
class Download:
    """One build in the catalog: its installation key, version, URL and sha256.

    ``full`` is true for a ``full`` archive, whose installation is its
    ``python/install/`` directory rather than ``python/``.

    Example:
        >>> d = Download(key="cpython-3.12.4-linux-x86_64-gnu", version="3.12.4",
        ...              url="https://m/releases/download/20240726/c.tar.gz", sha256=None)
        >>> d.minor_key
        'cpython-3.12-linux-x86_64-gnu'
    """

    key: str
    version: str
    url: str
    sha256: str | None
    implementation: str = "cpython"
    variant: str | None = None
    platform: str = ""
    build: str | None = None
    full: bool = False

    def __post_init__(self) -> None:
        if not self.platform:
            object.__setattr__(self, "platform", self.key.split("-", 2)[2])

    @property
    def minor_key(self) -> str:
        """The key of the minor-version link, e.g. ``cpython-3.12-linux-x86_64-gnu``.

        Example:
            >>> Download(key="cpython-3.13.1+freethreaded-linux-x86_64-gnu", version="3.13.1",
            ...          url="u", sha256=None, variant="freethreaded").minor_key
            'cpython-3.13+freethreaded-linux-x86_64-gnu'
        """
        return minor_key(self.key)

    @property
    def filename(self) -> str:
        """The archive's file name, from its URL.

        Example:
            >>> Download(key="cpython-3.12.4-linux-x86_64-gnu", version="3.12.4",
            ...          url="https://m/a%2Bb.tar.gz", sha256=None).filename
            'a+b.tar.gz'
        """
        return unquote(self.url.rsplit("/", 1)[-1].split("?", 1)[0])


def make_key(implementation: str, version: str, variant: str | None, platform: str) -> str:
    """An installation key as uv writes it.

    Example:
        >>> make_key("cpython", "3.13.0", "freethreaded", "linux-x86_64-gnu")
        'cpython-3.13.0+freethreaded-linux-x86_64-gnu'
    """
    suffix = f"+{variant}" if variant else ""
    return f"{implementation}-{version}{suffix}-{platform}"


def minor_key(key: str) -> str:
    """The minor-version link's name for installation ``key``.

    Example:
        >>> minor_key("cpython-3.12.4-linux-x86_64-gnu")
        'cpython-3.12-linux-x86_64-gnu'
    """
    implementation, version, rest = key.split("-", 2)
    number, plus, variant = version.partition("+")
    major_minor = ".".join(re.split(r"[.a-z]", number)[:2])
    return f"{implementation}-{major_minor}{plus}{variant}-{rest}"


def _libc_of(filename: str) -> str:
    """``musl``, ``gnu`` or ``none``, from the target triple inside an archive's name."""
    if "-linux-musl" in filename:
        return "musl"
    return "gnu" if "-linux-" in filename else "none"


def from_pbs_table(
    table: Mapping[Any, Mapping[tuple[str, str, bool], tuple[str, str | None]]],
) -> list[Download]:
    """`Download` values from pbs-installer's table ``{PythonVersion: {(os, arch,
    install_only): (url, sha256)}}``: the ``install_only`` build where there is one.

    Example:
        >>> from collections import namedtuple
        >>> V = namedtuple("V", "implementation major minor micro freethreaded")
        >>> url = "https://m/releases/download/20240726/cpython-3.12.4%2B20240726-x86_64-unknown-linux-gnu-install_only.tar.gz"
        >>> table = {V("cpython", 3, 12, 4, False): {("linux", "x86_64", True): (url, None)}}
        >>> [d.key for d in from_pbs_table(table)]
        ['cpython-3.12.4-linux-x86_64-gnu']
    """
    downloads: list[Download] = []
    for version, files in table.items():
        implementation = str(version.implementation)
        number = f"{version.major}.{version.minor}.{version.micro}"
        variant = FREETHREADED if getattr(version, "freethreaded", False) else None
        chosen: dict[tuple[str, str], tuple[bool, str, str | None]] = {}
        for (system, arch, install_only), (url, sha256) in files.items():
            if (system, arch) in chosen and chosen[(system, arch)][0]:
                continue
            chosen[(system, arch)] = (install_only, url, sha256)
        for (system, arch), (install_only, url, sha256) in chosen.items():
            name = unquote(url.rsplit("/", 1)[-1])
            parsed = _BUILD.search(name)
            libc = _libc_of(name)
            platform = f"{system}-{arch}-{libc}"
            downloads.append(
                Download(
                    key=make_key(implementation, number, variant, platform),
                    version=number,
                    url=url,
                    sha256=sha256,
                    implementation=implementation,
                    variant=variant,
                    platform=platform,
                    build=parsed["build"] if parsed else None,
                    full=not install_only,
                )
            )
    return downloads


def load_pbs_catalog() -> list[Download]:
    """The builds that the installed pbs-installer knows (its own URLs, no base-URL override).

    Example:
        >>> any(d.implementation == "cpython" for d in load_pbs_catalog())
        True
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its own use of importlib.resources
        from pbs_installer import _versions

    getter = getattr(_versions, "get_python_versions", None)
    table = getter(None) if getter is not None else _versions.PYTHON_VERSIONS
    return from_pbs_table(table)


_OS_NAMES = {"darwin": "macos"}


def parse_downloads_json(data: bytes, *, source: str) -> list[Download]:
    """`Download` values from uv's downloads-JSON format.

    A bad file is a `ConfigError` naming ``source``.

    Example:
        >>> entry = {"name": "cpython", "arch": {"family": "x86_64", "variant": None},
        ...          "os": "linux", "libc": "gnu", "major": 3, "minor": 12, "patch": 4,
        ...          "prerelease": "", "url": "https://m/releases/download/1/a.tar.gz",
        ...          "sha256": None, "variant": None, "build": "20240726"}
        >>> data = json.dumps({"k": entry}).encode()
        >>> [d.key for d in parse_downloads_json(data, source="d.json")]
        ['cpython-3.12.4-linux-x86_64-gnu']
    """
    try:
        document = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object of key -> download")
        downloads = []
        for name, entry in document.items():
            if not isinstance(entry, dict):
                raise ValueError(f"entry {name!r} is not an object")
            arch = entry["arch"]
            family = arch["family"] if isinstance(arch, dict) else str(arch)
            arch_variant = arch.get("variant") if isinstance(arch, dict) else None
            if arch_variant:
                family = f"{family}_{arch_variant}"
            system = _OS_NAMES.get(str(entry["os"]), str(entry["os"]))
            version = f"{int(entry['major'])}.{int(entry['minor'])}.{int(entry['patch'])}"
            version += str(entry.get("prerelease") or "")
            Version(version)
            variant = entry.get("variant") or None
            platform = f"{system}-{family}-{entry['libc']}"
            url = entry["url"]
            if not isinstance(url, str):
                raise ValueError(f"entry {name!r} has no URL")
            sha256 = entry.get("sha256") or None
            filename = unquote(url.rsplit("/", 1)[-1])
            downloads.append(
                Download(
                    key=make_key(str(entry["name"]), version, variant, platform),
                    version=version,
                    url=url,
                    sha256=sha256,
                    implementation=str(entry["name"]),
                    variant=variant,
                    platform=platform,
                    build=None if entry.get("build") is None else str(entry["build"]),
                    full="install_only" not in filename and "-full." in filename,
                )
            )
    except (ValueError, KeyError, TypeError, InvalidVersion) as error:
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise ConfigError(
            f"Python downloads JSON {source} is not valid: {' '.join(detail.split())}"
        ) from None
    return downloads


def select(
    downloads: Iterable[Download], request: PythonRequest, *, platform: Platform
) -> Download:
    """The newest stable build that fits ``request`` on ``platform`` (the request's own,
    for a full key); `PythonNotFoundError` names the request, the platform and the nearest.

    Example:
        >>> builds = [Download(key=f"cpython-{v}-linux-x86_64-gnu", version=v, url="u", sha256=None)
        ...           for v in ("3.12.3", "3.12.4", "3.13.0")]
        >>> from surefetch._python.requests import parse_request
        >>> here = Platform("linux", "x86_64", "gnu")
        >>> select(builds, parse_request("3.12"), platform=here).version
        '3.12.4'
    """
    wanted = request.platform or str(platform)
    candidates = [d for d in downloads if d.platform == wanted]
    fitting = [
        d
        for d in candidates
        if request.matches(
            implementation=d.implementation, version=d.version, variant=d.variant, platform=wanted
        )
    ]
    if fitting:
        return max(fitting, key=lambda d: (Version(d.version), d.build or ""))
    nearest = sorted(
        {d.version for d in candidates if d.implementation == request.implementation},
        key=Version,
        reverse=True,
    )[:5]
    shown = ", ".join(nearest) if nearest else "none"
    raise PythonNotFoundError(
        f"No download found for Python request {request.text!r} on {wanted}; "
        f"available versions there include: {shown}"
    )


def mirrored(url: str, mirror: str) -> str:
    """``url`` with its release-download prefix (up to ``/releases/download/``) replaced.

    The prefix is read from the URL itself, so any catalog works; a URL
    without it is a `ConfigError` naming the URL.

    Example:
        >>> mirrored("https://h/o/r/releases/download/20240726/c.tar.gz", "file:///srv/pbs/")
        'file:///srv/pbs/20240726/c.tar.gz'
    """
    at = url.find(RELEASE_MARK)
    if at < 0:
        raise ConfigError(
            f"Cannot use a Python install mirror for {url}: it does not start with a "
            f"python-build-standalone release-download prefix (…{RELEASE_MARK})"
        )
    return f"{mirror.rstrip('/')}/{url[at + len(RELEASE_MARK) :]}"


def candidate_urls(download: Download, mirrors: Sequence[str]) -> list[str]:
    """The URLs to try for ``download``: each mirror in order, then the original.

    Example:
        >>> d = Download(key="cpython-3.12.4-linux-x86_64-gnu", version="3.12.4",
        ...              url="https://h/releases/download/1/c.tar.gz", sha256=None)
        >>> candidate_urls(d, ["https://m1", "https://m2/"])
        ['https://m1/1/c.tar.gz', 'https://m2/1/c.tar.gz', 'https://h/releases/download/1/c.tar.gz']
    """
    return [*(mirrored(download.url, m) for m in mirrors), download.url]


def read_local_json(path: str) -> bytes:
    """The bytes of a downloads-JSON file; a missing or unreadable one is a `ConfigError`.

    Example:
        >>> try:
        ...     read_local_json("/nonexistent/downloads.json")
        ... except ConfigError as error:
        ...     print(str(error).split(":")[0])
        Cannot read Python downloads JSON /nonexistent/downloads.json
    """
    try:
        with open(os.path.expanduser(path), "rb") as file:
            return file.read()
    except OSError as error:
        raise ConfigError(
            f"Cannot read Python downloads JSON {path}: {error.strerror or error}"
        ) from None
