"""The command line's fast path: answer ``surefetch fetch URL`` from the cache.

A cache hit must start about as fast as Python itself, so this module
recognises the common forms of ``fetch`` by hand and looks the entry up with
`surefetch._cache.layout` alone: no argparse, no asyncio, no HTTP stack, no progress
bar. Anything it does not fully understand (an unknown flag, ``-o``,
``--extract``, ``--json``, a setting it would have to validate and cannot,
a miss) returns None, and the full command line takes over and gives the
same answer, or the error, the slow way.
"""

from __future__ import annotations

import os
import sys
import time

from surefetch._cache.layout import (
    BUCKET_DOWNLOADS,
    KIND_FILE,
    META_NAME,
    content_key,
    current_boot,
    entry_dir,
    light_sha256,
)
from surefetch._config_snapshot import Value, load, places, stamps
from surefetch._dirs import user_dir
from surefetch._pyproject import may_hold_tool_table

_VALUE_FLAGS = {
    "--sha256",
    "--cache-dir",
    "--mirror",
    "--retries",
    "-o",
    "--output",
    "--max-age",
}
_SWITCHES = {"-q", "--quiet", "-v", "--verbose", "-vv", "--offline", "--json"}
# Variables that the full path validates (an invalid one is exit code 2) and
# that a hit does not otherwise need: their presence sends it the slow way.
_ENV_ALLOWED = {"SUREFETCH_CACHE_DIR", "SUREFETCH_NO_RETRY_DELAY"}


def parse_plain_words(
    words: list[str], *, value_flags: set[str], switches: set[str], positional: str
) -> dict[str, list[str]] | None:
    """The flags and positional words of a plain command line, or None for anything else.

    Each flag maps to its values in order (a switch to empty strings), and
    ``positional`` to the words that are not flags. An unknown flag, or a
    value flag without its value, gives None: the full command line answers.

    Example:
        >>> parse_plain_words(["u", "--sha256=ab", "-q"], value_flags={"--sha256"},
        ...                   switches={"-q"}, positional="url")
        {'url': ['u'], '--sha256': ['ab'], '-q': ['']}
    """
    found: dict[str, list[str]] = {positional: []}
    index = 0
    while index < len(words):
        word = words[index]
        name, equals, value = word.partition("=")
        if name in value_flags:
            if not equals:
                index += 1
                if index >= len(words):
                    return None
                value = words[index]
            found.setdefault(name, []).append(value)
        elif word in switches:
            found.setdefault(word, []).append("")
        elif word.startswith("-"):
            return None
        else:
            found[positional].append(word)
        index += 1
    return found


def _parse(words: list[str]) -> dict[str, list[str]] | None:
    """The flags of a simple ``fetch`` command line, or None for anything else."""
    found = parse_plain_words(words, value_flags=_VALUE_FLAGS, switches=_SWITCHES, positional="url")
    if found is None or len(found["url"]) != 1:
        return None
    return found


def _file_values() -> dict[str, Value] | None:
    """The config files' checked values ({} when there are none), or None if they need reading.

    They come from the record the full path keeps (`surefetch._config_snapshot`)
    while no config file has changed since; a ``pyproject.toml`` that does not
    configure surefetch is no config file.
    """
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    config_dir = user_dir("config")
    taken = stamps(places(cwd, config_dir))
    if taken is None:
        return None
    project_toml, pyproject, user_toml = taken
    if project_toml == "-" and user_toml == "-":
        if pyproject == "-":
            return {}
        try:
            with open(os.path.join(cwd, "pyproject.toml"), "rb") as project:
                if not may_hold_tool_table(project.read()):  # the same test as _config's
                    return {}
        except OSError:
            return None
    return load(cwd, config_dir, cache_home=user_dir("cache"))


def _settings(cache_dir: str | None, max_age: str | None) -> tuple[str, float | None, bool] | None:
    """The cache root, the ``max_age`` setting and whether ``fsync`` is ``always``.

    None when the full path must answer.
    """
    from_files = None
    if not any(k.startswith("SUREFETCH_") and k not in _ENV_ALLOWED for k in os.environ):
        from_files = _file_values()
    if from_files is None:
        # Something to check that only the full path knows how to: let it say.
        from surefetch._config import CACHE_DIR, FSYNC, MAX_AGE, effective, resolve
        from surefetch._errors import ConfigError

        try:
            effective()  # validates every setting, as the full path would
            return (
                resolve(CACHE_DIR, flag_value=cache_dir),
                resolve(MAX_AGE, flag_value=max_age),
                resolve(FSYNC) == "always",
            )
        except ConfigError:
            return None
    root = _root(cache_dir, from_files)
    always = from_files.get("fsync") == "always"
    seconds = None
    if max_age is not None:
        seconds = plain_seconds(max_age)
        if seconds is None:
            return None
    else:
        configured_age = from_files.get("max_age")
        if configured_age is not None:
            if isinstance(configured_age, (bool, str)):
                return None  # not a number of seconds: the full path knows what it means
            seconds = float(configured_age)
    return root, seconds, always


def _root(cache_dir: str | None, from_files: dict[str, Value]) -> str:
    """The cache root: ``--cache-dir`` (``cache_dir``), else the variable, else the files."""
    if cache_dir is not None:
        return os.path.abspath(os.path.expanduser(cache_dir))
    value = os.environ.get("SUREFETCH_CACHE_DIR", "").strip()
    if value:
        return os.path.abspath(os.path.expanduser(value))
    configured = from_files.get("cache_dir")
    if isinstance(configured, str) and configured:
        return configured  # made absolute when the file was read
    return user_dir("cache")


def _cache_root(flag: str | None) -> str | None:
    """The cache root (``--cache-dir`` is ``flag``), or None when the full path must answer."""
    settings = _settings(flag, None)
    return None if settings is None else settings[0]


def plain_seconds(text: str) -> float | None:
    """A ``--max-age`` value in its plain form (up to 9 digits), or None for anything else.

    Like `plain_retries`, a shortcut, not a validator: every other form (a
    fraction, ``none``, a sign) and every number past the limit (ten years)
    goes the full way, which checks it (`_config.MAX_AGE`). A property test
    holds the two together.

    Example:
        >>> plain_seconds(" 60 "), plain_seconds("1.5"), plain_seconds("999999999")
        (60.0, None, None)
    """
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
        return None
    number = float(digits)
    return number if number <= _MAX_AGE_LIMIT else None


_SIMPLE_HOST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def simple_cache_url(url: str) -> str | None:
    """The normalised URL that keys the cache, for plain ``http(s)://host[:port]/path[?query]``.

    A small parser, so that a hit needs no ``urllib.parse`` (which brings
    ``re``, ``ipaddress`` and more). Anything it is not sure about (user
    information, IPv6, fragments, escapes, white space) gives None, and the
    full command line takes over. A property test checks that whatever it
    accepts, it normalises exactly as the full path does.

    Example:
        >>> simple_cache_url("HTTPS://Example.org:443/a/b.whl")
        'https://example.org/a/b.whl'
        >>> simple_cache_url("https://user:pw@example.org/a") is None
        True
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _DEFAULT_PORTS or not url.isascii():
        return None
    if any(c in rest for c in "@#%\\[] \t\r\n\f\v") or url != url.strip():
        return None
    netloc, _, path = rest.partition("/")
    host, colon, port = netloc.partition(":")
    if not host or not _SIMPLE_HOST.issuperset(host) or "?" in netloc or ";" in netloc:
        return None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or "xn--" in host.lower() or any(not 0 < len(x) <= 63 for x in labels):
        return None  # the full path's `_url.host_problem` says what is wrong with it
    if colon:
        if not port.isdigit() or len(port) > 5 or int(port) > 65535:
            return None
        number = int(port)
        netloc = host if number == _DEFAULT_PORTS[scheme] else f"{host}:{number}"
    else:
        netloc = host
    path = "/" + path
    if path.endswith("?"):
        return None
    return f"{scheme}://{netloc.lower()}{path}"


def answer_from_cache(words: list[str]) -> int | None:
    """Print the cached path for ``fetch`` arguments ``words`` and return 0, or None.

    Example:
        >>> answer_from_cache(["https://example.org/a.whl", "--extract", "out"]) is None
        True
    """
    started = time.perf_counter()
    found = _parse(words)
    if found is None:
        return None
    if "--output" in found:
        found.setdefault("-o", []).extend(found.pop("--output"))
    if "-o" in found and (len(found["-o"]) != 1 or "--json" in found):
        return None  # the full path has the rules for these
    url = simple_cache_url(found["url"][0])
    if url is None or any(simple_cache_url(m) is None for m in found.get("--mirror", [])):
        return None
    try:
        # content_key takes 64 hex digits only, a subset of what the full
        # path's check (`_url.check_sha256`) takes; anything else goes there.
        key = content_key(found["--sha256"][-1]) if "--sha256" in found else cache_key(url)
    except ValueError:
        return None
    if "--retries" in found and plain_retries(found["--retries"][-1]) is None:
        return None
    settings = _settings(
        found["--cache-dir"][-1] if "--cache-dir" in found else None,
        found["--max-age"][-1] if "--max-age" in found else None,
    )
    if settings is None:
        return None
    root, max_age, always = settings
    directory = entry_dir(root, BUCKET_DOWNLOADS, key)
    found_payload = _file_payload(
        directory, sha256=key if "--sha256" in found else None, synced_only=always
    )
    if found_payload is None:
        return None
    payload, meta = found_payload
    if "--sha256" not in found and not _fresh(meta, max_age=max_age):
        return None  # stale, or unsure: the full path revalidates it
    word = found["url"][0]
    record = None
    if "--json" in found:
        record = _json_record(directory, payload, url=word, started=started)
        if record is None:
            return None
    shown = payload
    if "-o" in found:
        written = _write_plain(payload, found["-o"][0])
        if written is None:
            return None
        shown = written
    if any(flag in found for flag in ("-v", "-vv", "--verbose")):
        if "?" in url:
            return None  # a query may hold a secret: the full path redacts it
        sys.stderr.write(f"Cache hit: {url} is {payload}\n")
    if record is not None:
        sys.stdout.write(record + "\n")
    elif "-o" not in found or not ({"-q", "--quiet"} & found.keys()):
        sys.stdout.write(shown + "\n")
    return 0


# `_config.MAX_RETRIES` and `_config.MAX_AGE_LIMIT`, which a hit cannot import:
# `_config` would cost more than the rest of the hit. A test checks that they agree.
_MAX_RETRIES = 100
_MAX_AGE_LIMIT = 10 * 365 * 86400.0


def plain_retries(text: str) -> int | None:
    """A ``--retries`` value in its plain form (up to 3 digits), or None for anything else.

    Not a validator but a shortcut: what it takes, `_config.parse_whole_number`
    (the one check of whole numbers) takes too, with the same value; every
    other form (a sign, more digits, an invalid value) goes the full way,
    which checks it. A property test holds the two together.

    Example:
        >>> plain_retries(" 5 "), plain_retries("+5"), plain_retries("101")
        (5, None, None)
    """
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 3:
        return None
    number = int(digits)
    return number if number <= _MAX_RETRIES else None


def _file_payload(
    directory: str, *, sha256: str | None, synced_only: bool = False
) -> tuple[str, bytes] | None:
    """The payload of the file entry in ``directory`` and its entry.json, when they plainly agree.

    With ``synced_only`` (``fsync=always``), an entry published without
    fsync goes the full way too, which syncs it before it is shown.

    The entry directory appears with its payload and metadata in one rename,
    so a payload and an ``entry.json`` naming it mean a complete entry; with
    ``sha256``, the entry must also record that hash. The
    JSON is checked by what it must contain rather than parsed: importing
    json (and the ``re`` it brings) would double the cost of a hit. Anything
    else, such as an unusual file name, goes the full way, which parses it.
    """
    try:
        names = os.listdir(os.path.join(directory, KIND_FILE))
        with open(os.path.join(directory, META_NAME), "rb") as meta:
            record = meta.read()
    except OSError:
        return None
    if len(names) != 1 or not names[0].isascii() or any(c in names[0] for c in '"\\'):
        return None
    expected = [b'"format": 1', b'"kind": "file"', b'"filename": "%s"' % names[0].encode()]
    if sha256 is not None:
        expected.append(b'"sha256": "%s"' % sha256.encode())
    if not all(part in record for part in expected):
        return None
    if b'"boot": ' in record and (synced_only or not _this_boot(record)):
        return None  # published without fsync: the full path checks it or syncs it
    return os.path.join(directory, KIND_FILE, names[0]), record


def _this_boot(record: bytes) -> bool:
    """Whether the entry with ``entry.json`` ``record`` was published in the running boot."""
    boot = current_boot()
    return boot is not None and b'"boot": "%s"' % boot.encode() in record


def _fresh(record: bytes, *, max_age: float | None) -> bool:
    """Whether the URL-keyed entry with ``entry.json`` ``record`` is fresh; False when unsure.

    The numbers that `surefetch._cache.freshness` stored are read by their
    text (no json, no HTTP dates), and the same rule as the full path's,
    `is_fresh`, decides.
    """
    from surefetch._cache.freshness import is_fresh

    checked = _number(record, b'"checked": ')
    if checked is None:
        checked = _number(record, b'"created": ')
    fresh_until = _number(record, b'"fresh_until": ')
    if checked is None or fresh_until == -1.0:
        return False
    return is_fresh(
        now=time.time(),
        checked=checked,
        fresh_until=fresh_until,
        immutable=b'"immutable": true' in record,
        max_age=max_age,
    )


def _number(record: bytes, opening: bytes) -> float | None:
    """The number after ``opening`` in ``record``; None when absent, -1.0 when not a number."""
    start = record.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = start
    while end < len(record) and record[end] not in b",\n}":
        end += 1
    try:
        number = float(record[start:end])
    except ValueError:
        return -1.0
    return number if number >= 0 else -1.0


_PLAIN_TEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:._-+~=&,;!$()*' "
)


def _json_record(directory: str, payload: str, *, url: str, started: float) -> str | None:
    """The ``--json`` line of a hit, in the full path's key order; None when unsure.

    Written by hand (json costs more than the rest of a hit), so only plain
    text is taken: a URL without a query (which may hold a secret to redact)
    and paths of plain characters; anything else goes the full way.
    """
    if "?" in url or not _PLAIN_TEXT.issuperset(url) or not _PLAIN_TEXT.issuperset(payload):
        return None
    try:
        with open(os.path.join(directory, META_NAME), "rb") as meta:
            record = meta.read().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    sha256 = _field(record, '"sha256": "', '"')
    size = _field(record, '"size": ', ",")
    if sha256 is None or len(sha256) != 64 or size is None or not size.isdigit():
        return None
    elapsed = round(time.perf_counter() - started, 3)
    return (
        f'{{"path": "{payload}", "url": "{url}", "sha256": "{sha256}", "size": {int(size)}, '
        '"from_cache": true, "revalidated": false, "stale": false, '
        '"attempts": 0, "retries": 0, "resumed_bytes": 0, '
        f'"elapsed_s": {elapsed}, "cache_path": "{payload}"}}'
    )


def _field(record: str, opening: str, closing: str) -> str | None:
    start = record.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = record.find(closing, start)
    return None if end < 0 else record[start:end].strip()


def _write_plain(payload: str, target: str) -> str | None:
    """Copy the cached file to ``target`` in the plain case; the path written, or None.

    The plain case: ``target`` (or the file of that name inside it, when it
    is a directory) is nothing yet or a regular file, not a link, in a
    directory that exists. It is written as the full path writes it
    (`surefetch._cli.fetch._write_output`): a temporary file beside it,
    made through the umask, flushed to disk, then renamed over it, the
    replaced file's mode kept. Anything else (a device, a FIFO, a link, a
    missing directory) goes the full way, which has the rules for it.
    """
    if not target.strip() or target.startswith("~"):
        return None
    destination = target
    if os.path.isdir(target) and not os.path.islink(target):
        destination = os.path.join(target, os.path.basename(payload))
    try:
        found = os.lstat(destination)
    except FileNotFoundError:
        found = None
    except OSError:
        return None
    if found is not None and (found.st_mode & 0o170000) != 0o100000:  # not a regular file
        return None
    parent = os.path.dirname(os.path.abspath(destination))
    if not os.path.isdir(parent) or os.path.islink(parent):
        return None
    temporary = os.path.join(
        parent, f".{os.path.basename(destination)[:200]}.{os.urandom(4).hex()}.part"
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        out = os.open(temporary, flags, 0o666)
    except OSError:
        return None
    try:
        with open(out, "wb") as sink, open(payload, "rb") as source:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
            sink.flush()
            os.fsync(sink.fileno())
        if found is not None:
            os.chmod(temporary, found.st_mode & 0o7777)
        os.replace(temporary, destination)
    except BaseException:
        try:  # noqa: SIM105 (contextlib is not loaded on a hit, and need not be)
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return os.path.abspath(destination)


def cache_key(normalized_url: str) -> str:
    """`url_key` of a URL that `simple_cache_url` already normalised."""
    digest = light_sha256()
    digest.update(normalized_url.encode("utf-8"))
    return str(digest.hexdigest()[:32])
