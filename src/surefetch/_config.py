"""Every setting in one place: its variable, flag, config key, default and check.

Where a value comes from (the first that is set wins):

1. a command-line flag (or the matching argument of a library call, which the
   caller applies before asking here);
2. the environment variable, ``SUREFETCH_<NAME>``;
3. a config file;
4. the default.

Config files. The *project* file is ``surefetch.toml`` in the working
directory, or, if that file does not exist, the ``[tool.surefetch]`` table of
``pyproject.toml`` there. The *user* file is ``surefetch.toml`` in the user
config directory (``platformdirs.user_config_dir("surefetch")``, for example
``~/.config/surefetch/surefetch.toml``). Both files are read and merged key by
key, and the project file wins, so a person can keep their cache directory in
their own file while a project pins its retries. If a directory has both
``surefetch.toml`` and ``[tool.surefetch]``, ``surefetch.toml`` wins and
``pyproject.toml`` is not read, as ruff and uv do: two files in one place
are never merged silently. Only the working directory is searched, not its
parents. A download tool runs from anywhere (CI scripts, installers), and a
file picked up from some parent directory would be a surprise. Keys are the
setting names (``http_retries = 5``). A relative ``cache_dir`` is relative to
the file's directory when it comes from a file, and to the working directory
when it comes from a flag or a variable.

Every value that is present gets checked, even one that a higher layer
overrides: an invalid value anywhere, an unknown key, or a TOML syntax error
is a `ConfigError` with one line that names where the value came from, the
setting, the value and what is allowed, for example
``SUREFETCH_HTTP_RETRIES='foo' is not valid: expected a whole number from 0 to
100``. The CLI exits with 2 for it.

An empty environment variable counts as unset, so ``SUREFETCH_CACHE_DIR=``
falls through to the file and the default. The exception is
``SUREFETCH_HTTP_RETRIES``, where an empty value has always been an error and
still is.

Settings on purpose not in this registry: ``SUREFETCH_NO_RETRY_DELAY`` (the
test switch of `surefetch.testing`) is read from the environment only, by
`surefetch._retry.budget.no_wait_active`. A committed ``surefetch.toml`` must never
be able to turn off backoff and start a retry storm, and the switch is read on
every retry wait, so it stays a plain ``os.environ`` lookup. ``SSL_CERT_FILE``
is the standard OpenSSL variable, not surefetch's own.

Over 400 lines on purpose: most of it is the registry itself, one entry of
data per setting with its check and its reason, and the loader that every
entry shares; splitting them would put each setting's rules far from it.

Import cost matters because a cache hit on the command line must start about
as fast as Python itself. So this module imports nothing heavy: tomllib
(tomli on 3.10) and platformdirs are imported inside the functions that need
them, and the files are read once per process per working directory (see
`clear_cache`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, cast, overload

from surefetch._config_snapshot import (
    places as snapshot_places,
    save as save_snapshot,
    stamps as snapshot_stamps,
)
from surefetch._errors import ConfigError
from surefetch._pyproject import may_hold_tool_table

T = TypeVar("T")

MAX_RETRIES = 100


# The most digits a whole number may have, leading zeros included: int() of a
# long string is slow, and past 4300 digits it raises ValueError.
_MAX_DIGITS = 30


def whole_number(value: object, *, minimum: int, maximum: int) -> int | None:
    """``value`` as a whole number from ``minimum`` to ``maximum``, or None if it is not one.

    The one check of whole numbers, wherever they come from: a string (a
    flag, a variable; white space around it and a sign are allowed, digits
    of other scripts are not) or an int from a config file (not a bool).
    `parse_whole_number` and the settings' converters word the error.

    Example:
        >>> whole_number(" +5 ", minimum=0, maximum=100)
        5
        >>> whole_number("101", minimum=0, maximum=100) is None
        True
    """
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in ("+", "-") else text
        # isascii: str.isdigit accepts other scripts' digits, like '٣'.
        if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
            return None
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        return None
    return number if minimum <= number <= maximum else None


def allowed_whole_number(minimum: int, maximum: int) -> str:
    """What an error about a whole number says is allowed.

    Example:
        >>> allowed_whole_number(0, 100)
        'expected a whole number from 0 to 100'
    """
    return f"expected a whole number from {minimum} to {maximum}"


def parse_whole_number(name: str, raw: object, *, minimum: int, maximum: int) -> int:
    """Parse ``raw`` (see `whole_number`) in [minimum, maximum] or raise `ConfigError`.

    ``name`` is the flag or variable that the error names.

    Example:
        >>> parse_whole_number("SUREFETCH_HTTP_RETRIES", " 5 ", minimum=0, maximum=100)
        5
        >>> try:
        ...     parse_whole_number("--retries", "-3", minimum=0, maximum=100)
        ... except ConfigError as error:
        ...     print(error)
        --retries='-3' is not valid: expected a whole number from 0 to 100
    """
    number = whole_number(raw, minimum=minimum, maximum=maximum)
    if number is None:
        allowed = allowed_whole_number(minimum, maximum)
        raise ConfigError(f"{name}={_shown(raw)} is not valid: {allowed}")
    return number


DEFAULT_LOCK_TIMEOUT = 600.0
MAX_SECONDS = 7 * 24 * 3600.0

CONFIG_FILE_NAME = "surefetch.toml"
PYPROJECT_NAME = "pyproject.toml"
PYPROJECT_TABLE = "tool.surefetch"

SOURCE_FLAG = "flag"
SOURCE_DEFAULT = "default"

# The longest value shown in an error: the line must stay readable even if a
# file holds a megabyte where a number should be.
_SHOWN_MAX = 120


class _Rejected(Exception):
    """Raised by a converter when a value is not allowed; `Setting.parse` words the error."""


# eq=False: a setting is one object of the registry, equal only to itself.
@dataclass(frozen=True, eq=False)
class Setting(Generic[T]):
    """One setting: where it can be set, its default, and how a value is checked.

    ``name`` is also the key in a config file. ``convert`` turns a raw value
    (a string from a flag or the environment, or any TOML value) into the
    setting's type, or raises `_Rejected`; ``allowed`` is what the error
    says is allowed. ``default_factory``, if given, computes the default on
    first need (the user cache directory needs platformdirs). ``why``
    explains the default.

    Example:
        >>> HTTP_RETRIES.parse(" 5 ", label="SUREFETCH_HTTP_RETRIES")
        5
    """

    name: str
    env: str
    flag: str | None
    convert: Callable[[object], T]
    allowed: str
    default: T
    help: str
    why: str
    default_factory: Callable[[], T] | None = None
    # An empty variable means "unset" (fall through) rather than a value to check.
    blank_env_is_unset: bool = True
    # A path: relative values are resolved against the file's directory or the cwd.
    is_path: bool = False

    def parse(self, value: object, *, label: str) -> T:
        """Check and convert ``value`` from the source ``label``, or raise a one-line `ConfigError`.

        ``label`` names the source: the variable, the flag, or
        ``"<file>: <key>"``.

        Example:
            >>> try:
            ...     CONCURRENCY.parse("0", label="SUREFETCH_CONCURRENCY")
            ... except ConfigError as error:
            ...     print(error)
            SUREFETCH_CONCURRENCY='0' is not valid: expected a whole number from 1 to 1024
        """
        try:
            return self.convert(value)
        except _Rejected:
            raise ConfigError(f"{label}={_shown(value)} is not valid: {self.allowed}") from None

    def default_value(self) -> T:
        """The default, computed if it depends on the platform.

        Example:
            >>> HTTP_RETRIES.default_value()
            3
        """
        return self.default if self.default_factory is None else self.default_factory()


def _shown(value: object) -> str:
    """``value`` as a short repr on one line; booleans spelled the TOML way."""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


# --- converters: pure, and they raise nothing but _Rejected ----------------------------


def _whole_number(minimum: int, maximum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        number = whole_number(value, minimum=minimum, maximum=maximum)
        if number is None:
            raise _Rejected
        return number

    return convert


def _seconds(minimum: float, maximum: float, *, optional: bool = False) -> Callable[[object], Any]:
    def convert(value: object) -> float | None:
        number: float
        if isinstance(value, str):
            text = value.strip()
            if optional and text.lower() == "none":
                return None
            try:
                number = float(text)
            except ValueError:
                raise _Rejected from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            raise _Rejected
        # The comparison is false for NaN, so NaN is refused with the rest. It
        # runs before float() so a huge TOML integer cannot overflow.
        if not minimum <= number <= maximum:
            raise _Rejected
        return float(number)

    return convert


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Rejected


def _directory(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise _Rejected
    # Stripped, as the variable always was: a stray space from a shell or
    # YAML file is far more likely than a directory name that ends in one.
    return os.path.expanduser(value.strip())


def _user_cache_dir() -> str:
    from surefetch._dirs import user_dir

    return user_dir("cache")


def _user_python_dir() -> str:
    from surefetch._dirs import user_dir

    return os.path.join(user_dir("data"), "python")


def _optional_text(value: object) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise _Rejected
    return value.strip()


# --- the registry ----------------------------------------------------------------------

CACHE_DIR: Setting[str] = Setting(
    name="cache_dir",
    env="SUREFETCH_CACHE_DIR",
    flag="--cache-dir",
    convert=_directory,
    allowed="expected a directory path",
    default="",
    default_factory=_user_cache_dir,
    is_path=True,
    help="the cache directory",
    why="the platform's user cache directory (platformdirs), where backup and "
    "cleanup tools expect caches",
)
HTTP_RETRIES: Setting[int] = Setting(
    name="http_retries",
    env="SUREFETCH_HTTP_RETRIES",
    flag="--retries",
    convert=_whole_number(0, MAX_RETRIES),
    allowed=allowed_whole_number(0, MAX_RETRIES),
    default=3,
    blank_env_is_unset=False,
    help="retries after the first attempt of a download (or any retried call)",
    why="3 rides out a mirror's hiccup without hanging on a dead host, as a "
    "well-known package manager found; at most 4 attempts however loops nest",
)
DEADLINE: Setting[float | None] = Setting(
    name="deadline",
    env="SUREFETCH_DEADLINE",
    flag=None,
    convert=_seconds(0.001, MAX_SECONDS, optional=True),
    allowed=f"expected a number of seconds from 0.001 to {MAX_SECONDS:g}, or 'none'",
    default=None,
    help="seconds for a whole retried operation, waits included",
    why="none: retries and timeouts already bound an operation; set one to bound CI jobs",
)
CONNECT_TIMEOUT: Setting[float] = Setting(
    name="connect_timeout",
    env="SUREFETCH_CONNECT_TIMEOUT",
    flag=None,
    convert=_seconds(0.001, 86400.0),
    allowed="expected a number of seconds from 0.001 to 86400",
    default=10.0,
    help="seconds to wait for a connection (TCP and TLS) to a server",
    why="10 s allows for a slow proxy or mobile link yet gives up on a dead host "
    "soon enough for a retry or a mirror to help",
)
HTTP_TIMEOUT: Setting[float] = Setting(
    name="http_timeout",
    env="SUREFETCH_HTTP_TIMEOUT",
    flag=None,
    convert=_seconds(0.001, 86400.0),
    allowed="expected a number of seconds from 0.001 to 86400",
    default=30.0,
    help="seconds to wait for the next bytes of a response (not the whole download)",
    why="30 s lets a server start streaming a large file, and a stalled "
    "connection is retried (and resumed) instead of hanging",
)
LOCK_TIMEOUT: Setting[float] = Setting(
    name="lock_timeout",
    env="SUREFETCH_LOCK_TIMEOUT",
    flag=None,
    convert=_seconds(0.0, MAX_SECONDS),
    allowed=f"expected a number of seconds from 0 to {MAX_SECONDS:g}",
    default=DEFAULT_LOCK_TIMEOUT,
    help="seconds to wait for another process that is filling the same cache entry",
    why="600 s covers a large download on a slow link, and a stuck process "
    "cannot hang a CI job forever",
)
OFFLINE: Setting[bool] = Setting(
    name="offline",
    env="SUREFETCH_OFFLINE",
    flag="--offline",
    convert=_flag,
    allowed="expected 1 or 0 (true/false, yes/no, on/off)",
    default=False,
    help="use the cache only, never the network",
    why="off: a cache miss downloads, which is what a download tool is for",
)
# The longest max_age: ten years, which is "forever" for a download cache.
MAX_AGE_LIMIT = 10 * 365 * 86400.0
MAX_AGE: Setting[float | None] = Setting(
    name="max_age",
    env="SUREFETCH_MAX_AGE",
    flag="--max-age",
    convert=_seconds(0.0, MAX_AGE_LIMIT, optional=True),
    allowed=f"expected a number of seconds from 0 to {MAX_AGE_LIMIT:g}, or 'none'",
    default=None,
    help="seconds a URL-keyed cache entry stays fresh after the server last sent or "
    "confirmed it, over what the server says (0: check every time)",
    why="none: the server's Cache-Control and Expires decide (RFC 9111), as browsers, "
    "pip and uv do",
)
CONCURRENCY: Setting[int] = Setting(
    name="concurrency",
    env="SUREFETCH_CONCURRENCY",
    flag=None,
    convert=_whole_number(1, 1024),
    allowed=allowed_whole_number(1, 1024),
    default=16,
    help="downloads at once in fetch_many",
    why="16 fills a fast link with large files and stays polite to one server; "
    "at most 1024, the usual limit of open files",
)
ALLOW_INSECURE_REDIRECTS: Setting[bool] = Setting(
    name="allow_insecure_redirects",
    env="SUREFETCH_ALLOW_INSECURE_REDIRECTS",
    flag="--allow-insecure-redirects",
    convert=_flag,
    allowed="expected 1 or 0 (true/false, yes/no, on/off)",
    default=False,
    help="follow a redirect from https to plain http",
    why="off: such a redirect would fetch in plaintext, and cache under the https "
    "URL, what was asked for over TLS",
)


def _one_of(choices: tuple[str, ...]) -> Callable[[object], str]:
    """A converter that takes one of ``choices``, in any case, spaces around it ignored."""

    def convert(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise _Rejected

    return convert


TRANSPORTS = ("auto", "aiohttp", "stdlib")
TRANSPORT: Setting[str] = Setting(
    name="transport",
    env="SUREFETCH_TRANSPORT",
    flag=None,
    convert=_one_of(TRANSPORTS),
    allowed="expected one of " + ", ".join(TRANSPORTS),
    default="auto",
    help="the HTTP client of plain-file fetches and streamed archives",
    why="auto: the standard library's http.client for fetch() and afetch() of one file "
    "(afetch in a worker thread), fetch_many() of plain files (in threads), the command "
    "line's plain fetch and the download of an archive extracted while it streams (in a "
    "worker thread; it starts in a fraction of aiohttp's import time), aiohttp for "
    "afetch_many()",
)
FSYNC_MODES = ("lazy", "always")
FSYNC: Setting[str] = Setting(
    name="fsync",
    env="SUREFETCH_FSYNC",
    flag=None,
    convert=_one_of(FSYNC_MODES),
    allowed="expected one of " + ", ".join(FSYNC_MODES),
    default="lazy",
    help="when a downloaded file's cache entry is forced onto the disk",
    why="lazy: an entry is published without fsync and trusted for the rest of the boot "
    "that wrote it (a killed process loses nothing: the kernel holds the data); the first "
    "use after a restart checks its size and sha256 once, and a power loss's damage is "
    "downloaded again. Where the boot cannot be identified (outside Linux), as always: "
    "every entry fsynced before it appears",
)
PYTHON_INSTALL_DIR: Setting[str] = Setting(
    name="python_install_dir",
    env="SUREFETCH_PYTHON_INSTALL_DIR",
    flag="--install-dir",
    convert=_directory,
    allowed="expected a directory path",
    default="",
    default_factory=_user_python_dir,
    is_path=True,
    help="where `surefetch python` installs Pythons, one directory per key",
    why="the platform's user data directory (platformdirs): installations are "
    "data to keep, unlike the cache",
)
PYTHON_INSTALL_MIRROR: Setting[str] = Setting(
    name="python_install_mirror",
    env="SUREFETCH_PYTHON_INSTALL_MIRROR",
    flag="--mirror",
    convert=_optional_text,
    allowed="expected a URL (http, https or file)",
    default="",
    help="a mirror that replaces the python-build-standalone release-download prefix",
    why="none: the catalog's own URLs, unless a mirror is set up",
)
PYTHON_DOWNLOADS_JSON: Setting[str] = Setting(
    name="python_downloads_json",
    env="SUREFETCH_PYTHON_DOWNLOADS_JSON",
    flag="--downloads-json",
    convert=_optional_text,
    allowed="expected a path or URL of a downloads JSON file (uv's format)",
    default="",
    help="the catalog of Python builds, in uv's downloads-JSON format",
    why="none: the table of the pbs-installer package, kept up to date by its releases",
)

SETTINGS: tuple[Setting[Any], ...] = (
    CACHE_DIR,
    HTTP_RETRIES,
    DEADLINE,
    CONNECT_TIMEOUT,
    HTTP_TIMEOUT,
    LOCK_TIMEOUT,
    OFFLINE,
    MAX_AGE,
    CONCURRENCY,
    ALLOW_INSECURE_REDIRECTS,
    TRANSPORT,
    FSYNC,
    PYTHON_INSTALL_DIR,
    PYTHON_INSTALL_MIRROR,
    PYTHON_DOWNLOADS_JSON,
)
BY_NAME: Mapping[str, Setting[Any]] = {setting.name: setting for setting in SETTINGS}


# --- config files ------------------------------------------------------------------------


class ConfigFiles(NamedTuple):
    """The config files' values, merged: setting name -> (value, the file it came from).

    ``paths`` lists the files that were read, the project file first. A
    named tuple rather than a dataclass: this module is imported on every
    command's start, and defining a dataclass costs most of a millisecond.

    Example:
        >>> ConfigFiles().values
        {}
    """

    values: Mapping[str, tuple[Any, str]] = {}  # shared, and fine: never mutated
    paths: tuple[str, ...] = ()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _parse_toml(text: str, *, path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the 3.10 twin, a conditional dependency
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except (ValueError, RecursionError) as error:
        # TOMLDecodeError is a ValueError and names the line and column. Some
        # errors escape tomllib unwrapped: a plain ValueError for an integer
        # with more than 4300 digits, RecursionError for deeply nested arrays.
        raise ConfigError(f"{path}: invalid TOML: {_one_line(error)}") from None
    return data


def _unknown_key(path: str, key: str) -> ConfigError:
    import difflib  # only on this error path

    names = [setting.name for setting in SETTINGS]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{path}: {_shown(key)} is not a setting{hint}: expected one of {', '.join(names)}"
    )


def parse_config(text: str, *, path: str, pyproject: bool = False) -> dict[str, Any] | None:
    """The checked values of one config file's ``text``: setting name -> value.

    ``path`` names the file in errors and anchors a relative ``cache_dir``.
    With ``pyproject``, only the ``[tool.surefetch]`` table counts, and None
    means there is none. Raises `ConfigError` for a TOML syntax error, an
    unknown key or an invalid value. Pure: nothing is read.

    Example:
        >>> parse_config("http_retries = 5\\noffline = true", path="/p/surefetch.toml")
        {'http_retries': 5, 'offline': True}
        >>> parse_config("[project]\\nname = 'x'", path="/p/pyproject.toml", pyproject=True)
    """
    data = _parse_toml(text, path=path)
    table: object = data
    prefix = ""
    if pyproject:
        tool = data.get("tool")
        if not isinstance(tool, dict) or "surefetch" not in tool:
            return None
        table = tool["surefetch"]
        prefix = PYPROJECT_TABLE + "."
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: {PYPROJECT_TABLE}={_shown(table)} is not valid: "
                "expected a table of settings"
            )
    assert isinstance(table, dict)
    base = os.path.dirname(path)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        setting = BY_NAME.get(key)
        if setting is None:
            raise _unknown_key(path, prefix + key)
        values[key] = _anchored(setting, setting.parse(raw, label=f"{path}: {prefix}{key}"), base)
    return values


def _read(path: str) -> bytes | None:
    """The bytes of ``path``, None if it does not exist; `ConfigError` if it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None


def _decode(data: bytes, *, path: str) -> str:
    try:
        # utf-8-sig: Windows editors like to start a file with a byte order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 at byte {error.start}") from None


def _load(cwd: str, config_dir: str) -> ConfigFiles:
    layers: list[tuple[str, dict[str, Any]]] = []  # highest precedence first
    project = ""
    if cwd:
        project = os.path.join(cwd, CONFIG_FILE_NAME)
        data = _read(project)
        if data is not None:
            layers.append((project, parse_config(_decode(data, path=project), path=project) or {}))
        else:
            pyproject = os.path.join(cwd, PYPROJECT_NAME)
            data = _read(pyproject)
            # Most pyproject.toml files are not about surefetch: a byte search
            # skips parsing them, and importing tomllib, on the CLI's fast path.
            if data is not None and may_hold_tool_table(data):
                text = _decode(data, path=pyproject)
                values = parse_config(text, path=pyproject, pyproject=True)
                if values is not None:
                    layers.append((pyproject, values))
    if config_dir:
        user = os.path.join(config_dir, CONFIG_FILE_NAME)
        if user != project:  # running from the config directory: one file, read once
            data = _read(user)
            if data is not None:
                layers.append((user, parse_config(_decode(data, path=user), path=user) or {}))
    merged: dict[str, tuple[Any, str]] = {}
    for path, values in reversed(layers):
        for name, value in values.items():
            merged[name] = (value, path)
    return ConfigFiles(values=merged, paths=tuple(path for path, _ in layers))


def _current_dir() -> str:
    try:
        return os.getcwd()
    except OSError:  # the working directory was deleted: there is no project file
        return ""


def _user_config_dir() -> str:
    from surefetch._dirs import user_dir

    return user_dir("config")


# (cwd, user config dir) -> their files. One entry: a process rarely changes
# directory, and a test that does gets a fresh load.
_cached: tuple[str, str, ConfigFiles] | None = None


def load_config_file(*, cwd: str | None = None, config_dir: str | None = None) -> ConfigFiles:
    """Find, read and check the config files, merged with the project file winning.

    ``cwd`` (default: the working directory) is searched for
    ``surefetch.toml``, else ``pyproject.toml`` with ``[tool.surefetch]``;
    ``config_dir`` (default: ``platformdirs.user_config_dir("surefetch")``)
    for ``surefetch.toml``. An empty string skips that place. With both
    defaults the result is cached for the process (see `clear_cache`).
    Raises `ConfigError` for a file that cannot be read or parsed, an unknown
    key or an invalid value.

    Example:
        >>> import tempfile
        >>> empty = tempfile.mkdtemp()
        >>> load_config_file(cwd=empty, config_dir=empty).values
        {}
    """
    if cwd is not None or config_dir is not None:
        return _load(
            _current_dir() if cwd is None else cwd,
            _user_config_dir() if config_dir is None else config_dir,
        )
    return _files_of(_current_dir())


def _files_of(here: str) -> ConfigFiles:
    """`load_config_file` for the working directory ``here`` and the user config directory."""
    global _cached
    user = _user_config_dir()
    cached = _cached
    if cached is not None and cached[0] == here and cached[1] == user:
        return cached[2]
    taken = snapshot_stamps(snapshot_places(here, user)) if here else None
    files = _load(here, user)
    _cached = (here, user, files)
    if taken is not None and files.paths:
        # For the command line's fast path, which then need not parse these files again.
        from surefetch._dirs import user_dir

        values = {name: value for name, (value, _) in files.values.items()}
        save_snapshot(here, user, taken, values, cache_home=user_dir("cache"))
    return files


def clear_cache() -> None:
    """Forget the config files read so far; the next lookup reads them again.

    Example:
        >>> clear_cache()
    """
    global _cached
    _cached = None


# --- resolving -------------------------------------------------------------------------


def _anchored(setting: Setting[T], value: T, base: str) -> T:
    """A path setting's value made absolute against ``base``; any other value as it is."""
    if setting.is_path and isinstance(value, str):
        return cast("T", os.path.normpath(os.path.join(base, value)))
    return value


def resolve_in(
    setting: Setting[T],
    *,
    flag_value: object = None,
    environ: Mapping[str, str],
    files: ConfigFiles,
    cwd: str,
) -> tuple[T, str]:
    """The value of ``setting`` and its source, from explicit inputs (pure).

    ``flag_value`` None means no flag was given. The variable is checked even
    when a flag overrides it: an invalid value anywhere is an error. The
    source is ``"flag"``, ``"environment (VAR)"``, ``"config file (PATH)"``
    or ``"default"``.

    Example:
        >>> resolve_in(HTTP_RETRIES, environ={"SUREFETCH_HTTP_RETRIES": "5"},
        ...            files=ConfigFiles(), cwd="/")
        (5, 'environment (SUREFETCH_HTTP_RETRIES)')
        >>> resolve_in(HTTP_RETRIES, flag_value="1", environ={}, files=ConfigFiles(), cwd="/")
        (1, 'flag')
    """
    from_env: tuple[T] | None = None
    raw = environ.get(setting.env)
    if raw is not None and (raw.strip() or not setting.blank_env_is_unset):
        from_env = (_anchored(setting, setting.parse(raw, label=setting.env), cwd),)
    if flag_value is not None:
        value = setting.parse(flag_value, label=setting.flag or setting.name)
        return _anchored(setting, value, cwd), SOURCE_FLAG
    if from_env is not None:
        return from_env[0], f"environment ({setting.env})"
    found = files.values.get(setting.name)
    if found is not None:
        return found[0], f"config file ({found[1]})"
    return setting.default_value(), SOURCE_DEFAULT


@overload
def resolve(setting: Setting[T], *, flag_value: object = None) -> T: ...


@overload
def resolve(setting: str, *, flag_value: object = None) -> Any: ...


def resolve(setting: Setting[Any] | str, *, flag_value: object = None) -> Any:
    """The effective value of a setting (a `Setting` or its name): flag > env > file > default.

    Reads ``os.environ``, the working directory and the config files (cached).
    Raises `ConfigError` with one line if a value is invalid.

    Example:
        >>> resolve("http_retries", flag_value="7")
        7
        >>> resolve(OFFLINE, flag_value=True)
        True
    """
    return Settings().get(setting, flag_value=flag_value)


class Settings:
    """The settings as one call reads them: the working directory and config files found once.

    `resolve` of several settings, for the price of one lookup of the files;
    each `get` still reads the environment, so a snapshot is for one call,
    not to keep.

    Example:
        >>> settings = Settings()
        >>> settings.get("http_retries", flag_value="2"), settings.get(OFFLINE, flag_value=False)
        (2, False)
    """

    __slots__ = ("_cwd", "_files")

    def __init__(self) -> None:
        self._cwd = _current_dir()
        self._files = _files_of(self._cwd)

    @overload
    def get(self, setting: Setting[T], *, flag_value: object = None) -> T: ...

    @overload
    def get(self, setting: str, *, flag_value: object = None) -> Any: ...

    def get(self, setting: Setting[Any] | str, *, flag_value: object = None) -> Any:
        """The effective value of ``setting``, as `resolve` gives it."""
        if isinstance(setting, str):
            setting = BY_NAME[setting]
        value, _ = resolve_in(
            setting, flag_value=flag_value, environ=os.environ, files=self._files, cwd=self._cwd
        )
        return value


Effective = list[tuple[Setting[Any], Any, str]]


def effective_in(
    *,
    flags: Mapping[str, object],
    environ: Mapping[str, str],
    files: ConfigFiles,
    cwd: str,
) -> Effective:
    """Every setting's value and source, from explicit inputs (pure); see `resolve_in`.

    ``flags`` maps setting names to flag values (None: not given).

    Example:
        >>> [(s.name, v, src) for s, v, src in effective_in(
        ...     flags={}, environ={}, files=ConfigFiles(), cwd="/")][1]
        ('http_retries', 3, 'default')
    """
    unknown = set(flags) - set(BY_NAME)
    if unknown:
        raise KeyError(f"not settings: {', '.join(sorted(unknown))}")
    rows: Effective = []
    for setting in SETTINGS:
        value, source = resolve_in(
            setting, flag_value=flags.get(setting.name), environ=environ, files=files, cwd=cwd
        )
        rows.append((setting, value, source))
    return rows


def effective(*, flags: Mapping[str, object] | None = None) -> Effective:
    """Every setting's effective value and where it came from, in registry order.

    ``flags`` maps setting names to the values given on the command line.
    Every source is checked, so one invalid value anywhere raises `ConfigError`.

    Example:
        >>> rows = effective(flags={"http_retries": "2"})
        >>> [(setting.name, value, source) for setting, value, source in rows][1]
        ('http_retries', 2, 'flag')
    """
    return effective_in(
        flags=flags or {}, environ=os.environ, files=load_config_file(), cwd=_current_dir()
    )


def config_file_places() -> list[str]:
    """Where config files are looked for, highest precedence first.

    Example:
        >>> [place.rsplit("/", 1)[-1] for place in config_file_places()][:2]
        ['surefetch.toml', 'pyproject.toml [tool.surefetch]']
    """
    here = _current_dir()
    places = [os.path.join(here, CONFIG_FILE_NAME), os.path.join(here, PYPROJECT_NAME)]
    places[1] += f" [{PYPROJECT_TABLE}]"
    places.append(os.path.join(_user_config_dir(), CONFIG_FILE_NAME))
    return places
