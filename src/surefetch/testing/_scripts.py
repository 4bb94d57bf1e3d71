"""The scripts of `ChaosServer`: one `Fault` per request, and what each request met."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

if sys.platform == "linux":
    pass

FaultKind = Literal[
    "reset_after",
    "close_after",
    "stall",
    "status",
    "retry_after",
    "drop",
    "ignore_range",
    "wrong_content_range",
    "change_etag",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour, applied to one request. Build with the classmethods.

    Example:
        >>> Fault.reset_after(1000)
        Fault(kind='reset_after', nbytes=1000, seconds=0.0, code=0, headers=(), body=b'')
        >>> Fault.retry_after(2, status=503).headers
        (('Retry-After', '2'),)
    """

    kind: FaultKind
    nbytes: int = 0
    seconds: float = 0.0
    code: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def reset_after(cls, nbytes: int) -> Fault:
        """Send the normal status and headers, *nbytes* of body, then a TCP RST.

        Example:
            >>> Fault.reset_after(0).kind
            'reset_after'
        """
        return cls("reset_after", nbytes=_non_negative(nbytes, "nbytes"))

    @classmethod
    def close_after(cls, nbytes: int) -> Fault:
        """Like `reset_after` but end with a clean FIN: the client sees a short body.

        Example:
            >>> Fault.close_after(10).nbytes
            10
        """
        return cls("close_after", nbytes=_non_negative(nbytes, "nbytes"))

    @classmethod
    def stall(cls, seconds: float, *, after: int = 0) -> Fault:
        """Send the headers and *after* body bytes, go silent for *seconds*, then close.

        Stopping the server ends a stall at once.

        Example:
            >>> Fault.stall(30, after=100).seconds
            30.0
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        return cls("stall", nbytes=_non_negative(after, "after"), seconds=float(seconds))

    @classmethod
    def status(
        cls, code: int, *, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Fault:
        """Answer *code* with *headers* (which override the defaults) and *body*.

        Example:
            >>> Fault.status(503, headers={"X-Why": "maintenance"}).code
            503
        """
        return cls(
            "status",
            code=_status_code(code),
            headers=tuple((headers or {}).items()),
            body=bytes(body),
        )

    @classmethod
    def retry_after(cls, value: int | str, *, status: int = 429) -> Fault:
        """Answer *status* (429 or 503, usually) with ``Retry-After: value``.

        *value* is seconds, or any string (an HTTP date, or garbage to test parsers).

        Example:
            >>> Fault.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", status=503).code
            503
        """
        return cls("retry_after", code=_status_code(status), headers=(("Retry-After", str(value)),))

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the connection without any response.

        Example:
            >>> Fault.drop().kind
            'drop'
        """
        return cls("drop")

    @classmethod
    def ignore_range(cls) -> Fault:
        """Answer 200 with the whole body even if a Range was asked for.

        Example:
            >>> Fault.ignore_range().kind
            'ignore_range'
        """
        return cls("ignore_range")

    @classmethod
    def wrong_content_range(cls) -> Fault:
        """Answer 206 whose Content-Range does not start where the client asked.

        The body holds the bytes the (wrong) Content-Range claims, as a confused
        server or cache would send; a client that trusts the request offset instead
        of checking the header corrupts its file.

        Example:
            >>> Fault.wrong_content_range().kind
            'wrong_content_range'
        """
        return cls("wrong_content_range")

    @classmethod
    def change_etag(cls) -> Fault:
        """Serve this request with a new ETag and Last-Modified, as if the file changed.

        An ``If-Range`` from an earlier response therefore does not match, and the
        answer is a 200 with the whole body.

        Example:
            >>> Fault.change_etag().kind
            'change_etag'
        """
        return cls("change_etag")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the server saw and did for one request (including dropped ones).

    *status* is None when no response was sent (`Fault.drop`). *body_bytes_sent*
    counts body bytes handed to the socket. *range_start* is the first byte the
    client asked for (suffix ranges resolved against the file size), or None.
    *connection* numbers TCP connections, so that keep-alive reuse is visible.
    *target* is the request-target exactly as sent (``/a?sig=...``): the query
    string, which *path* leaves out, shows what the client really asked for.

    Example:
        >>> rec = RequestRecord("GET", "/a", {}, 200, None, 10, None)
        >>> (rec.status, rec.body_bytes_sent)
        (200, 10)
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int | None
    fault: Fault | None
    body_bytes_sent: int
    range_start: int | None
    connection: int = 0
    target: str = ""


def _non_negative(value: int, name: str) -> int:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return int(value)


def _status_code(code: int) -> int:
    if not 200 <= code <= 599:
        # 1xx would need interim-response handling that this server does not do.
        raise ValueError(f"status must be in 200..599, got {code!r}")
    return int(code)
