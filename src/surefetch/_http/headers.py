"""HTTP header logic for downloads: Retry-After, Content-Range (pure, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import NamedTuple

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta seconds or an HTTP date).

    ``now`` is the current Unix time; a date in the past means no wait.
    Unparseable values give None (fall back to the backoff schedule).

    Example:
        >>> parse_retry_after("120", now=0.0)
        120.0
        >>> parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", now=10.0)
        20.0
        >>> parse_retry_after("soon", now=0.0) is None
        True
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class ContentRange(NamedTuple):
    """A parsed ``Content-Range: bytes first-last/total`` (total None for ``*``)."""

    first: int
    last: int
    total: int | None


def parse_content_range(value: str | None) -> ContentRange | None:
    """Parse a Content-Range header; None when absent or malformed.

    Example:
        >>> parse_content_range("bytes 100-199/1000")
        ContentRange(first=100, last=199, total=1000)
        >>> parse_content_range("bytes */1000") is None
        True
    """
    if value is None:
        return None
    match = _CONTENT_RANGE.match(value)
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if last < first or (total is not None and last >= total):
        return None
    return ContentRange(first, last, total)


def basic_authorization(username: str | None, password: str | None) -> str | None:
    """The ``Authorization`` value for credentials given in a URL, or None without any.

    Example:
        >>> basic_authorization("alice", "secret")
        'Basic YWxpY2U6c2VjcmV0'
        >>> basic_authorization(None, None) is None
        True
    """
    if username is None:
        return None
    import base64

    pair = f"{username}:{password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


# Headers whose values are credentials or session state: never shown, whatever the verbosity.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-amz-security-token"}
)


def shown_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """``headers`` as one line for a debug log, with credentials replaced by ``***``.

    Example:
        >>> shown_headers({"Authorization": "Basic dTpw", "Range": "bytes=10-"})
        'Authorization: ***; Range: bytes=10-'
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return "; ".join(
        f"{name}: {'***' if name.lower() in _SECRET_HEADERS else value}" for name, value in pairs
    )
