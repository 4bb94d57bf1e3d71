"""Resuming a download: what to ask for and what to make of the reply. No I/O.

A partial download remembers what the server said about its bytes (a
`Validator`). The next request asks for the rest with ``Range`` and guards
it with ``If-Range``, so that a file that changed on the server comes back
whole (``200``) rather than as a range of other bytes. These functions make
those decisions from plain values, so they are tested without sockets; the
transport only carries them out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from surefetch._http.headers import parse_content_range


@dataclass(frozen=True, slots=True)
class Validator:
    """What identifies the bytes of a partial download on the server.

    Example:
        >>> Validator(url="https://h/a", etag='"v1"', last_modified=None, total=10).if_range
        '"v1"'
    """

    url: str
    etag: str | None
    last_modified: str | None
    total: int | None

    @property
    def if_range(self) -> str | None:
        """The If-Range value: a strong ETag, else Last-Modified (weak ETags may not be used)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def range_headers(size: int, validator: Validator | None) -> dict[str, str] | None:
    """The headers that ask for the rest of ``size`` bytes, or None to start from zero.

    Without a validator a range cannot be guarded, so the download restarts.

    Example:
        >>> v = Validator(url="https://h/a", etag='"v1"', last_modified=None, total=10)
        >>> range_headers(4, v)
        {'Range': 'bytes=4-', 'If-Range': '"v1"'}
        >>> range_headers(0, v) is None, range_headers(4, None) is None
        (True, True)
    """
    if_range = validator.if_range if validator is not None else None
    if size <= 0 or if_range is None:
        return None
    return {"Range": f"bytes={size}-", "If-Range": if_range}


class Reply(enum.Enum):
    """What a reply to a (perhaps ranged) request means for the partial file."""

    WHOLE = "whole"
    """``200``: the whole body follows; what the partial held is dropped."""
    CONTINUES = "continues"
    """``206`` whose Content-Range starts where the partial ends."""
    DOES_NOT_CONTINUE = "does not continue"
    """``206`` that does not continue the partial: restart from zero."""
    RANGE_REFUSED = "range refused"
    """``416`` to a ranged request: restart from zero."""
    ERROR = "error"
    """Any other status: an HTTP error, classified by its status."""


def judge_reply(
    status: int, *, ranged: bool, content_range: str | None, size: int, total: int | None
) -> Reply:
    """What ``status`` (with its ``Content-Range``) means for a partial of ``size`` bytes.

    ``total`` is the size the server announced before, if any; a range whose
    total disagrees with it does not continue the file.

    Example:
        >>> judge_reply(206, ranged=True, content_range="bytes 4-9/10", size=4, total=10)
        <Reply.CONTINUES: 'continues'>
        >>> judge_reply(206, ranged=True, content_range="bytes 0-9/10", size=4, total=10)
        <Reply.DOES_NOT_CONTINUE: 'does not continue'>
        >>> judge_reply(416, ranged=True, content_range=None, size=4, total=10)
        <Reply.RANGE_REFUSED: 'range refused'>
    """
    if status == 416 and ranged:
        return Reply.RANGE_REFUSED
    if status == 200:
        return Reply.WHOLE
    if status != 206:
        return Reply.ERROR
    parsed = parse_content_range(content_range)
    if (
        parsed is None
        or parsed.first != size
        or (total is not None and parsed.total not in (None, total))
    ):
        return Reply.DOES_NOT_CONTINUE
    return Reply.CONTINUES
