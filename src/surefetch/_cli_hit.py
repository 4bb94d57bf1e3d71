"""The command line's fast path: answer ``surefetch fetch URL`` from the cache.

A cache hit must start about as fast as Python itself, so this module
recognises the common forms of ``fetch`` by hand and looks the entry up with
`_cache_layout` alone: no argparse, no asyncio, no HTTP stack, no progress
bar. Anything it does not fully understand (an unknown flag, ``-o``,
``--extract``, ``--json``, a setting it would have to validate and cannot,
a miss) returns None, and the full command line takes over and gives the
same answer, or the error, the slow way.
"""

from __future__ import annotations

import os
import sys

from surefetch._cache_layout import (
    BUCKET_DOWNLOADS,
    content_key,
    entry_dir,
    payload_path,
    read_record,
    url_key,
)

_VALUE_FLAGS = {"--sha256", "--cache-dir", "--mirror", "--retries"}
_SWITCHES = {"-q", "--quiet", "-v", "--verbose", "-vv", "--offline"}
# Variables that the full path validates (an invalid one is exit code 2) and
# that a hit does not otherwise need: their presence sends it the slow way.
_ENV_ALLOWED = {"SUREFETCH_CACHE_DIR", "SUREFETCH_NO_RETRY_DELAY"}


def _parse(words: list[str]) -> dict[str, list[str]] | None:
    """The flags of a simple ``fetch`` command line, or None for anything else."""
    found: dict[str, list[str]] = {"url": []}
    index = 0
    while index < len(words):
        word = words[index]
        name, equals, value = word.partition("=")
        if name in _VALUE_FLAGS:
            if not equals:
                index += 1
                if index >= len(words):
                    return None
                value = words[index]
            found.setdefault(name, []).append(value)
        elif word in _SWITCHES:
            found.setdefault(word, []).append("")
        elif word.startswith("-"):
            return None
        else:
            found["url"].append(word)
        index += 1
    if len(found["url"]) != 1:
        return None
    return found


def _settings_need_checking() -> bool:
    """Whether anything besides the flags could change or invalidate the answer."""
    if any(k.startswith("SUREFETCH_") and k not in _ENV_ALLOWED for k in os.environ):
        return True
    try:
        if os.path.exists("surefetch.toml"):
            return True
        with open("pyproject.toml", "rb") as project:
            if b"surefetch" in project.read():
                return True
    except OSError:
        pass
    return os.path.exists(os.path.join(user_dir("config"), "surefetch.toml"))


def user_dir(kind: str) -> str:
    """The user ``"cache"`` or ``"config"`` directory of surefetch, as platformdirs says.

    On Linux and the BSDs it follows the XDG rules directly: importing
    platformdirs costs more than the rest of a cache hit. A test checks that
    the two agree.

    Example:
        >>> user_dir("cache").endswith("surefetch")
        True
    """
    if os.name == "posix" and sys.platform != "darwin":
        variable, fallback = {
            "cache": ("XDG_CACHE_HOME", "~/.cache"),
            "config": ("XDG_CONFIG_HOME", "~/.config"),
        }[kind]
        base = os.environ.get(variable, "").strip() or os.path.expanduser(fallback)
        return os.path.join(base, "surefetch")
    import platformdirs

    if kind == "cache":
        return platformdirs.user_cache_dir("surefetch", appauthor=False)
    return platformdirs.user_config_dir("surefetch", appauthor=False)


def _cache_root(flag: str | None) -> str | None:
    if _settings_need_checking():
        from surefetch._config import CACHE_DIR, effective, resolve
        from surefetch._errors import ConfigError

        try:
            effective()  # validates every setting, as the full path would
            return resolve(CACHE_DIR, flag_value=flag)
        except ConfigError:
            return None
    if flag is not None:
        return os.path.abspath(os.path.expanduser(flag))
    value = os.environ.get("SUREFETCH_CACHE_DIR", "").strip()
    if value:
        return os.path.abspath(os.path.expanduser(value))
    return user_dir("cache")


def answer_from_cache(words: list[str]) -> int | None:
    """Print the cached path for ``fetch`` arguments ``words`` and return 0, or None.

    Example:
        >>> answer_from_cache(["https://example.org/a.whl", "--extract", "out"]) is None
        True
    """
    found = _parse(words)
    if found is None:
        return None
    from surefetch._errors import ConfigError
    from surefetch._url import check_sha256, parse_url

    try:
        for mirror in found.get("--mirror", []):
            parse_url(mirror)
        url = parse_url(found["url"][0])
        sha256 = check_sha256(found["--sha256"][-1]) if "--sha256" in found else None
        if "--retries" in found:
            from surefetch._settings import MAX_RETRIES, parse_whole_number

            parse_whole_number("--retries", found["--retries"][-1], minimum=0, maximum=MAX_RETRIES)
    except ConfigError:
        return None
    root = _cache_root(found["--cache-dir"][-1] if "--cache-dir" in found else None)
    if root is None:
        return None
    key = content_key(sha256) if sha256 else url_key(url.url)
    directory = entry_dir(root, BUCKET_DOWNLOADS, key)
    try:
        record = read_record(directory)
    except ValueError:
        return None  # the full path warns about the broken entry
    if record is None:
        return None
    payload = payload_path(directory, record["kind"], record["filename"])
    if not os.path.exists(payload):
        return None
    sys.stdout.write(payload + "\n")
    return 0
