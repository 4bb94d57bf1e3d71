"""Resuming a download: what to ask for and what to make of the reply. No I/O.

A partial download remembers what the server said about its bytes (a
`Validator`). The next request asks for the rest with ``Range`` and guards
it with ``If-Range``, so that a file that changed on the server comes back
whole (``200``) rather than as a range of other bytes. Without a validator
(a proxy or mirror that strips ``ETag`` and ``Last-Modified``) a range can
still be asked for when the finished file is checked against a sha256 or a
size: the check catches a file that changed, and the download then starts
over once.

Every reply is judged against what was asked: a request without ``Range``
asked for the file from byte 0, so a ``206`` to it must start at byte 0 too,
and whatever total size a reply states must agree with every statement
before it. These functions make those decisions from plain values, so they
are tested without sockets; the transport only carries them out.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from surefetch._http.headers import parse_content_range


def url_digest(url: str) -> str:
    """What identifies the URL of a partial download, without keeping the URL itself.

    The URL's query may hold a token, and the partial's record stays on disk
    after a failure; its sha256 tells whether a later attempt asks for the
    same URL, and nothing more.

    Example:
        >>> url_digest("https://h/a?token=secret")[:16]
        '13d5d2d6b54b17f5'
    """
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Validator:
    """What identifies the bytes of a partial download on the server.

    ``url_digest`` is `url_digest` of the URL they came from; ``total`` is
    the size of the whole file, as the server stated it.

    Example:
        >>> Validator(url_digest="ab12", etag='"v1"', last_modified=None, total=10).if_range
        '"v1"'
    """

    url_digest: str
    etag: str | None
    last_modified: str | None
    total: int | None

    @property
    def if_range(self) -> str | None:
        """The If-Range value: a strong ETag, else Last-Modified (weak ETags may not be used)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def range_headers(
    size: int, validator: Validator | None, *, checked: bool
) -> dict[str, str] | None:
    """The headers that ask for the rest of ``size`` bytes, or None to start from zero.

    With a validator the range is guarded by ``If-Range``. Without one it is
    asked for plainly only when the finished file is ``checked`` (a sha256 or
    a size is known), which catches a file that changed between attempts;
    otherwise the download restarts.

    Example:
        >>> v = Validator(url_digest="ab12", etag='"v1"', last_modified=None, total=10)
        >>> range_headers(4, v, checked=False)
        {'Range': 'bytes=4-', 'If-Range': '"v1"'}
        >>> bare = Validator(url_digest="ab12", etag=None, last_modified=None, total=10)
        >>> range_headers(4, bare, checked=True)
        {'Range': 'bytes=4-'}
        >>> range_headers(4, bare, checked=False) is None, range_headers(0, v, checked=True) is None
        (True, True)
    """
    if size <= 0 or validator is None:
        return None
    if_range = validator.if_range
    if if_range is None:
        return {"Range": f"bytes={size}-"} if checked else None
    return {"Range": f"bytes={size}-", "If-Range": if_range}


class Reply(enum.Enum):
    """What a reply to a (perhaps ranged) request means for the partial file."""

    WHOLE = "whole"
    """``200``: the whole body follows; what the partial held is dropped."""
    CONTINUES = "continues"
    """``206`` that starts where asked and agrees with what was said before."""
    DOES_NOT_CONTINUE = "does not continue"
    """``206`` that does not continue the partial: restart from zero."""
    RANGE_REFUSED = "range refused"
    """``416`` to a ranged request: restart from zero."""
    ERROR = "error"
    """Any other status: an HTTP error, classified by its status."""


class Verdict(NamedTuple):
    """A judged reply: what it means, the file's total size, and why it was refused.

    ``total`` is the size of the whole file as now known (None when no
    statement gave one); ``end`` is where this reply's body ends in the
    file. ``why`` says what is wrong with a reply that does not continue.

    Example:
        >>> Verdict(Reply.WHOLE, total=10, end=10).why
        ''
    """

    reply: Reply
    total: int | None = None
    end: int | None = None
    why: str = ""


def judge_reply(
    status: int,
    *,
    ranged: bool,
    asked_from: int,
    content_range: str | None,
    content_length: int | None,
    total: int | None,
) -> Verdict:
    """What ``status`` means for a request for the bytes from ``asked_from`` on.

    A request without ``Range`` (``ranged`` false) asked from byte 0: some
    servers answer it with a ``206``, which is taken at its word, so one
    covering only the start of the file is continued like any other. A
    ``206`` is accepted only when its ``Content-Range`` starts exactly at
    ``asked_from``, states a total size that agrees with ``total`` (what the
    server said before, if anything), and its ``Content-Length``, if any,
    matches its range. A ``200`` carries the whole file; its
    ``Content-Length`` becomes the total.

    Example:
        >>> def judge(status, asked_from, content_range, total=10):
        ...     verdict = judge_reply(status, ranged=asked_from > 0, asked_from=asked_from,
        ...                           content_range=content_range, content_length=None,
        ...                           total=total)
        ...     return verdict.reply.name, verdict.total, verdict.end
        >>> judge(206, 4, "bytes 4-9/10")
        ('CONTINUES', 10, 10)
        >>> judge(206, 0, "bytes 0-3/10", total=None)  # a 206 to a plain GET: the start
        ('CONTINUES', 10, 4)
        >>> judge(206, 4, "bytes 0-9/10")
        ('DOES_NOT_CONTINUE', None, None)
        >>> judge(416, 4, None)
        ('RANGE_REFUSED', None, None)
        >>> judge(200, 4, None)
        ('WHOLE', None, None)
    """
    if status == 416 and ranged:
        return Verdict(Reply.RANGE_REFUSED)
    if status == 200:
        return Verdict(Reply.WHOLE, total=content_length, end=content_length)
    if status != 206:
        return Verdict(Reply.ERROR)
    parsed = parse_content_range(content_range)
    if parsed is None:
        return _refused(f"its Content-Range {content_range!r} is missing or malformed")
    if parsed.first != asked_from:
        asked = f"byte {asked_from}" if ranged else "byte 0 (no range was asked for)"
        return _refused(f"its Content-Range {content_range!r} does not start at {asked}")
    if total is not None and parsed.total not in (None, total):
        return _refused(
            f"its Content-Range {content_range!r} states a total of {parsed.total} bytes, "
            f"but the server said {total} before"
        )
    known = parsed.total if parsed.total is not None else total
    if known is None:
        return _refused(
            f"its Content-Range {content_range!r} states no total size, so the file "
            "could never be known complete"
        )
    length = parsed.last - parsed.first + 1
    if content_length is not None and content_length != length:
        return _refused(
            f"its Content-Length {content_length} disagrees with its Content-Range "
            f"{content_range!r}"
        )
    return Verdict(Reply.CONTINUES, total=known, end=parsed.last + 1)


def _refused(why: str) -> Verdict:
    return Verdict(Reply.DOES_NOT_CONTINUE, why=why)
