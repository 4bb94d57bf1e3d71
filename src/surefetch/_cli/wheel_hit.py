"""The command line's fast path for ``surefetch wheel SDIST...``: answer from the cache.

Like `surefetch._cli.hit` for ``fetch``: the plain forms (local sdist files,
or a URL with ``--sha256``; ``--cache-dir``, ``-v``, ``-q``) are read by hand
and each sdist's wheel is looked up with `surefetch._wheels.names` alone: no
argparse, no ``build``, no asyncio, no HTTP stack. A local sdist costs one
sha256 of the file. Anything else, or a miss for any SDIST, returns None and
the full command line answers.
"""

from __future__ import annotations

import sys

from surefetch._cache.layout import light_sha256
from surefetch._cli.hit import _cache_root, parse_plain_words, simple_cache_url
from surefetch._wheels.names import build_key, find_in

_VALUE_FLAGS = {"--sha256", "--cache-dir"}
_SWITCHES = {"-q", "--quiet", "-v", "--verbose", "--offline"}
_CHUNK = 1 << 20


def _file_sha256(path: str) -> str | None:
    digest = light_sha256()
    try:
        with open(path, "rb", buffering=0) as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return str(digest.hexdigest())


def _parse(words: list[str]) -> dict[str, list[str]] | None:
    found = parse_plain_words(
        words, value_flags=_VALUE_FLAGS, switches=_SWITCHES, positional="sdist"
    )
    return found if found is not None and found["sdist"] else None


def answer_from_cache(words: list[str]) -> int | None:
    """Print the cached wheel of each SDIST in ``words`` and return 0, or None.

    Example:
        >>> answer_from_cache(["demo-1.0.tar.gz", "--rebuild"]) is None
        True
    """
    found = _parse(words)
    if found is None:
        return None
    sha256 = found["--sha256"][-1].lower() if "--sha256" in found else None
    if sha256 is not None and (len(found["sdist"]) != 1 or len(found["--sha256"]) != 1):
        return None
    root = _cache_root(found["--cache-dir"][-1] if "--cache-dir" in found else None)
    if root is None:
        return None
    lines = []
    for sdist in found["sdist"]:
        if "://" in sdist:
            if sha256 is None or simple_cache_url(sdist) is None:
                return None
            digest = sha256
        else:
            hashed = _file_sha256(sdist)
            if hashed is None or (sha256 is not None and hashed != sha256):
                return None
            digest = hashed
        try:
            key = build_key(digest)
        except ValueError:
            return None
        wheel = find_in(root, key)
        if wheel is None:
            return None
        lines.append(wheel)
    # -q prints the paths too, as the full command does without -o.
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0
