"""Which bucket names, keys and bucket directory names are valid, as patterns.

Apart from `layout` because they need ``re``, which a cache hit on the command
line does not import: the hit only reads a path it built itself.
"""

from __future__ import annotations

import re

BUCKET_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
KEY_PATTERN = re.compile(r"[0-9a-z][0-9a-z_-]{1,127}")
BUCKET_DIR_PATTERN = re.compile(r"(?P<bucket>[a-z][a-z0-9_-]{0,39})-v(?P<version>[0-9]{1,4})")


def check_key(bucket: str, key: str) -> None:
    """Raise ValueError unless ``bucket`` and ``key`` are safe, canonical names.

    Example:
        >>> check_key("downloads", "ab" * 16)
        >>> check_key("downloads", "../etc")
        Traceback (most recent call last):
        ...
        ValueError: key='../etc' is not valid: ...
    """
    if not isinstance(bucket, str) or not BUCKET_PATTERN.fullmatch(bucket):
        raise ValueError(
            f"bucket={bucket!r} is not valid: expected a lower-case name "
            "of letters, digits, '-' and '_'"
        )
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValueError(
            f"key={key!r} is not valid: expected 2 to 128 lower-case letters, digits, "
            "'-' and '_' (use url_key or content_key)"
        )
