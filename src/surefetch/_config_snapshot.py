"""What the config files of a directory said, kept so that a cache hit need not parse them.

Parsing a ``[tool.surefetch]`` table costs a command-line cache hit more
than the rest of it (tomllib, the settings registry and its checks). So
whenever the full path has read and checked the config files of a working
directory, it records their checked values here, with a stamp of each place
a config file may be (size, modification and change times, inode; or its
absence). The fast path reads the record back only while every stamp still
matches, which costs three ``stat`` calls; any change to any of the files,
or one appearing or vanishing, sends it the full way again, which parses
them and writes a new record.

A record is a cache: it lives in the user cache directory, is replaced
atomically, and one that cannot be read or written is simply not used.
Only the values of the config files are kept: flags and environment
variables are the caller's to weigh, as ever.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Mapping

_HEADER = "surefetch config snapshot 1"
Value = str | int | float | bool
_TAGS: dict[type, str] = {str: "s", int: "i", float: "f", bool: "b"}
_PARSERS: dict[str, Callable[[str], Value]] = {
    "s": str,
    "i": int,
    "f": float,
    "b": lambda text: {"True": True, "False": False}[text],
}


def places(cwd: str, config_dir: str) -> tuple[str, ...]:
    """Where config files may be for ``cwd``, in the order `surefetch._config` reads them.

    Example:
        >>> places("/p", "/u")
        ('/p/surefetch.toml', '/p/pyproject.toml', '/u/surefetch.toml')
    """
    return (
        os.path.join(cwd, "surefetch.toml"),
        os.path.join(cwd, "pyproject.toml"),
        os.path.join(config_dir, "surefetch.toml"),
    )


def stamps(paths: tuple[str, ...]) -> tuple[str, ...] | None:
    """A stamp per path that changes whenever the file does; None if one cannot be taken.

    Example:
        >>> stamps(("/no/such/surefetch.toml",))
        ('-',)
    """
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            found.append("-")
            continue
        except OSError:
            return None
        found.append(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}")
    return tuple(found)


def _record_path(cwd: str, config_dir: str, cache_home: str) -> str:
    key = f"{cwd}\0{config_dir}".encode(errors="surrogateescape")
    return os.path.join(cache_home, "config-snapshots", f"{zlib.crc32(key):08x}")


def _render(cwd: str, config_dir: str, taken: tuple[str, ...], values: Mapping[str, Value]) -> str:
    lines = [_HEADER, cwd, config_dir, *taken]
    for name, value in sorted(values.items()):
        lines.append(f"{name}\t{_TAGS[type(value)]}\t{value}")
    return "\n".join(lines) + "\n"


def save(
    cwd: str,
    config_dir: str,
    taken: tuple[str, ...],
    values: Mapping[str, object],
    *,
    cache_home: str,
) -> bool:
    """Record ``values`` as what the files stamped ``taken`` said; whether it was recorded.

    ``taken`` must be stamped before the files were read, so that a change
    made while they were read makes the record stale rather than wrong.
    Nothing is recorded when a value is not a plain string, number or
    boolean, when a value or a path holds a line break, or when the record
    cannot be written.

    Example:
        >>> import tempfile
        >>> home, here = tempfile.mkdtemp(), tempfile.mkdtemp()
        >>> taken = stamps(places(here, here))
        >>> save(here, here, taken, {"http_retries": 5}, cache_home=home)
        True
        >>> load(here, here, cache_home=home)
        {'http_retries': 5}
    """
    plain: dict[str, Value] = {}
    for name, value in values.items():
        if not isinstance(value, (str, int, float)) or not name or "\t" in name:
            return False
        plain[name] = value
    text = _render(cwd, config_dir, taken, plain)
    if text.count("\n") != 3 + len(taken) + len(plain):
        return False  # a value or a path with a line break
    path = _record_path(cwd, config_dir, cache_home)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as existing:
            if existing.read() == text:
                return True
    except OSError:
        pass
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return False
    return True


def load(cwd: str, config_dir: str, *, cache_home: str) -> dict[str, Value] | None:
    """The recorded values of the config files for ``cwd``, or None unless every stamp matches.

    Example:
        >>> import tempfile
        >>> load(tempfile.mkdtemp(), "/u", cache_home=tempfile.mkdtemp()) is None
        True
    """
    try:
        with open(
            _record_path(cwd, config_dir, cache_home), encoding="utf-8", errors="surrogateescape"
        ) as file:
            lines = file.read().split("\n")
    except OSError:
        return None
    here = places(cwd, config_dir)
    count = len(here)
    if lines[:3] != [_HEADER, cwd, config_dir] or lines[-1] != "" or len(lines) < 4 + count:
        return None
    if tuple(lines[3 : 3 + count]) != stamps(here):
        return None
    values: dict[str, Value] = {}
    for line in lines[3 + count : -1]:
        name, _, rest = line.partition("\t")
        tag, _, text = rest.partition("\t")
        parse = _PARSERS.get(tag)
        if parse is None:
            return None
        try:
            values[name] = parse(text)
        except (KeyError, ValueError):
            return None
    return values
