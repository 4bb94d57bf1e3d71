"""Where a built wheel lives in the cache, and finding one: the light half of `_wheels`.

A cache hit (``surefetch wheel SDIST`` answered before argparse, and
`surefetch.wheels.find`) needs only this module and `surefetch._cache.layout`:
no ``build``, no asyncio, no HTTP stack, no ``json``, and ``packaging`` only
when the candidates are not a single pure wheel.

Layout in the ``built-wheels`` bucket (its own layout version)::

    built-wheels-v1/<sha[:2]>/<sha>-<settings>-<tag>/   one entry per built wheel
        entry.json                                      the cache's metadata
        tree/<wheel file name>                          the wheel, named by its tags
        tree/build.json                                 what was built, how and when

``<sha>`` is the sdist's sha256, ``<settings>`` 16 hex digits of the config
settings' digest (`settings_digest`) and ``<tag>`` 16 hex digits of the
digest of the wheel's tag triple. Wheels built from one sdist with one set of
settings, by different interpreters or platforms, are sibling entries with
one prefix (`build_key`) in one shard directory: each appears by its own
rename, so adding a wheel never rewrites the others, and a lookup lists the
shard for the prefix.
"""

from __future__ import annotations

import os
import sys

from surefetch._cache.layout import BUCKET_BUILT_WHEELS, META_NAME, bucket_dir_name, light_sha256

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs a cache hit more than a millisecond
    from collections.abc import Mapping, Sequence

    ConfigSettings = Mapping[str, str | Sequence[str]]

BUILD_RECORD = "build.json"
WHEEL_SUFFIX = ".whl"
_TREE = "tree"
_DIGITS = 16


def _sha256_hex(data: bytes) -> str:
    digest = light_sha256()
    digest.update(data)
    return str(digest.hexdigest())


def settings_digest(config_settings: ConfigSettings | None) -> str:
    """16 hex digits that name a set of PEP 517 config settings (none: the empty set).

    Order of keys does not matter; the order of a key's repeated values does.

    Example:
        >>> settings_digest(None) == settings_digest({})
        True
        >>> settings_digest({"a": "1", "b": "2"}) == settings_digest({"b": "2", "a": "1"})
        True
        >>> settings_digest({"a": "1"}) == settings_digest({"a": "2"})
        False
    """
    parts: list[str] = []
    for key in sorted(config_settings or {}):
        value = (config_settings or {})[key]
        values = [value] if isinstance(value, str) else list(value)
        parts.append("\0".join([key, str(len(values)), *values]))
    return _sha256_hex("\1".join(parts).encode("utf-8", "surrogatepass"))[:_DIGITS]


def build_key(sdist_sha256: str, config_settings: ConfigSettings | None = None) -> str:
    """The prefix shared by every wheel built from one sdist with one set of settings.

    It is also the key whose lock a build holds: one build per sdist and settings.

    Example:
        >>> build_key("AB" * 32)[:65]
        'abababababababababababababababababababababababababababababababab-'
    """
    sha = sdist_sha256.lower()
    if len(sha) != 64 or not set(sha) <= set("0123456789abcdef"):
        raise ValueError(f"sdist_sha256={sdist_sha256!r} is not valid: expected 64 hex digits")
    return f"{sha}-{settings_digest(config_settings)}"


def wheel_tag(filename: str) -> str:
    """The ``python-abi-platform`` part of a wheel's file name.

    Example:
        >>> wheel_tag("demo-1.0-py3-none-any.whl")
        'py3-none-any'
    """
    parts = filename[: -len(WHEEL_SUFFIX)].split("-")
    if not filename.endswith(WHEEL_SUFFIX) or len(parts) not in (5, 6):
        raise ValueError(f"{filename!r} is not a wheel file name")
    return "-".join(parts[-3:])


def entry_key(key: str, filename: str) -> str:
    """The cache key of the wheel ``filename`` built under `build_key` ``key``.

    Example:
        >>> entry_key("ab" * 32 + "-" + "0" * 16, "demo-1.0-py3-none-any.whl")[:81]
        'abababababababababababababababababababababababababababababababab-0000000000000000'
    """
    return f"{key}-{_sha256_hex(wheel_tag(filename).encode())[:_DIGITS]}"


def candidates(root: str, key: str) -> list[tuple[str, str]]:
    """(wheel file name, path) of every complete entry under the prefix ``key``.

    An entry appears with its ``entry.json`` in one rename, so an entry
    directory holding both that and a wheel is complete.

    Example:
        >>> import tempfile
        >>> candidates(tempfile.mkdtemp(), "ab" * 32 + "-" + "0" * 16)
        []
    """
    shard = os.path.join(root, bucket_dir_name(BUCKET_BUILT_WHEELS), key[:2])
    prefix = key + "-"
    found: list[tuple[str, str]] = []
    try:
        names = sorted(name for name in os.listdir(shard) if name.startswith(prefix))
    except OSError:
        return found
    for name in names:
        entry = os.path.join(shard, name)
        tree = os.path.join(entry, _TREE)
        try:
            if not os.path.isfile(os.path.join(entry, META_NAME)):
                continue
            wheels = [n for n in os.listdir(tree) if n.endswith(WHEEL_SUFFIX)]
        except OSError:
            continue
        if len(wheels) == 1:
            found.append((wheels[0], os.path.join(tree, wheels[0])))
    return found


def built_by_marker() -> str:
    """The name of the empty file that marks a wheel as built by this very interpreter.

    The wheel passed `packaging.tags.sys_tags` of the interpreter that built
    it, so that interpreter, asking again, needs no tag computation (which
    costs more than the rest of a hit). The name digests the executable, its
    version and platform.

    Example:
        >>> built_by_marker().startswith("built-by-")
        True
    """
    identity = f"{sys.executable}\0{sys.version}\0{sys.platform}\0{sys.implementation.cache_tag}"
    return f"built-by-{_sha256_hex(identity.encode('utf-8', 'surrogateescape'))[:_DIGITS]}"


def _plainly_compatible(filename: str, path: str) -> bool:
    """Whether a pure wheel suits this interpreter, told without ``packaging``.

    A wheel this interpreter built (`built_by_marker`) suits it; otherwise
    only the common pure tags are recognised (``py3``, ``py3N`` up to this
    minor version, ``none``, ``any``); anything else goes to `packaging.tags`.
    """
    if os.path.exists(os.path.join(os.path.dirname(path), built_by_marker())):
        return True
    if sys.implementation.name != "cpython" or sys.version_info[0] != 3:
        return False
    try:
        python, abi, platform = wheel_tag(filename).split("-")
    except ValueError:
        return False
    if abi != "none" or platform != "any":
        return False
    minor = sys.version_info[1]
    accepted = {"py3", *(f"py3{n}" for n in range(minor + 1))}
    return any(tag in accepted for tag in python.split("."))


def choose(found: Sequence[tuple[str, str]]) -> str | None:
    """The path of the first wheel in ``found`` that suits this interpreter, by
    `packaging.tags.sys_tags` order; None when none does.

    A single pure wheel is judged without importing ``packaging``.

    Example:
        >>> choose([("demo-1.0-py3-none-any.whl", "/c/demo-1.0-py3-none-any.whl")])
        '/c/demo-1.0-py3-none-any.whl'
        >>> choose([("demo-1.0-cp27-cp27m-win32.whl", "/c/x.whl")]) is None
        True
    """
    if not found:
        return None
    if len(found) == 1 and _plainly_compatible(*found[0]):
        return found[0][1]
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    by_tag: dict[object, str] = {}
    for filename, path in found:
        try:
            tags = parse_wheel_filename(filename)[3]
        except InvalidWheelFilename:
            continue
        for tag in tags:
            by_tag.setdefault(tag, path)
    for tag in sys_tags():
        if tag in by_tag:
            return by_tag[tag]
    return None


def find_in(root: str, key: str) -> str | None:
    """The path of the cached wheel under the prefix ``key`` that suits this interpreter.

    Example:
        >>> import tempfile
        >>> find_in(tempfile.mkdtemp(), "ab" * 32 + "-" + "0" * 16) is None
        True
    """
    return choose(candidates(root, key))


def find(
    sdist_sha256: str,
    *,
    config_settings: ConfigSettings | None = None,
    cache: object = None,
) -> str | None:
    """See `surefetch.wheels.find`: the cached wheel's path as a string, or None."""
    if cache is None:
        from surefetch._cache.store import default_root

        root = os.fspath(default_root())
    else:
        # A directory, or a Cache (its root); a Path has a `root` attribute too.
        held = cache if isinstance(cache, (str, os.PathLike)) else getattr(cache, "root", cache)
        root = os.path.abspath(os.path.expanduser(os.fspath(held)))  # type: ignore[call-overload]
    return find_in(root, build_key(sdist_sha256, config_settings))
