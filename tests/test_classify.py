"""Classification over a table of real exceptions and wrapped chains."""

from __future__ import annotations

import asyncio
import builtins
import errno
import http.client
import socket
import ssl
import sys
import tarfile
import zlib

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from surefetch import Decision, HTTPStatusError, RetriesExhausted, classify, classify_status


def _chained(outer: BaseException, inner: BaseException, *, explicit: bool = True) -> BaseException:
    """``outer`` raised while handling ``inner``, as real code would do it."""
    try:
        try:
            raise inner
        except BaseException as exc:
            if explicit:
                raise outer from exc
            raise outer  # noqa: B904 - the implicit __context__ is what is tested
    except BaseException as caught:
        return caught


def _request_info() -> aiohttp.RequestInfo:
    url = URL("http://127.0.0.1/x")
    return aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)


def _cert_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
    return error


TRANSIENT = [
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    ConnectionAbortedError(errno.ECONNABORTED, "Software caused connection abort"),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    BrokenPipeError(errno.EPIPE, "Broken pipe"),
    TimeoutError("timed out"),
    OSError(errno.ETIMEDOUT, "Connection timed out"),
    OSError(errno.ENETUNREACH, "Network is unreachable"),
    socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    asyncio.TimeoutError(),
    asyncio.IncompleteReadError(b"partial", 100),
    http.client.IncompleteRead(b"partial", 100),
    http.client.RemoteDisconnected("Remote end closed connection without response"),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientPayloadError("Response payload is not completed"),
    aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"),
    aiohttp.ServerTimeoutError("Timeout on reading data from socket"),
    aiohttp.ClientResponseError(_request_info(), (), status=503, message="Service Unavailable"),
    aiohttp.ClientResponseError(_request_info(), (), status=429, message="Too Many Requests"),
    HTTPStatusError(url="http://h/x", status=500),
    HTTPStatusError(url="http://h/x", status=502),
    HTTPStatusError(url="http://h/x", status=504),
    HTTPStatusError(url="http://h/x", status=408),
    type("StreamReset", (Exception,), {})("HTTP/2 stream 1 was reset"),
]

FATAL = [
    ValueError("bad input"),
    KeyError("x"),
    FileNotFoundError(errno.ENOENT, "No such file"),
    PermissionError(errno.EACCES, "Permission denied"),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    _cert_error(),
    HTTPStatusError(url="http://h/x", status=404),
    HTTPStatusError(url="http://h/x", status=403),
    HTTPStatusError(url="http://h/x", status=400),
    aiohttp.ClientResponseError(_request_info(), (), status=404, message="Not Found"),
    tarfile.ReadError("not a gzip file"),
    zlib.error("invalid distance too far back"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_retry(error: BaseException) -> None:
    assert classify(error).retry is True


@pytest.mark.parametrize("error", FATAL, ids=lambda e: type(e).__name__)
def test_fatal_errors_do_not_retry(error: BaseException) -> None:
    assert classify(error).retry is False


def test_certificate_error_inside_aiohttp_connector_error_is_fatal() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 443, True, True, None, None, None)
    error = aiohttp.ClientConnectorCertificateError(key, _cert_error())
    decision = classify(error)
    assert decision.retry is False
    assert "certificate" in decision.reason.lower()


def test_dns_name_error_inside_aiohttp_connector_error_is_fatal() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("nowhere", 80, False, True, None, None, None)
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert classify(aiohttp.ClientConnectorError(key, gai)).retry is False
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert classify(aiohttp.ClientConnectorError(key, again)).retry is True


def test_reset_wrapped_in_an_extraction_error_is_transient() -> None:
    reset = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    decoding = _chained(aiohttp.ClientPayloadError("error decoding response body"), reset)
    extract = _chained(RuntimeError("Failed to extract archive python.tar.gz"), decoding)
    assert classify(extract).retry is True


def test_implicit_context_is_walked() -> None:
    error = _chained(
        tarfile.ReadError("unexpected end of data"),
        ConnectionResetError(104, "reset"),
        explicit=False,
    )
    assert classify(error).retry is True


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in Python 3.11")
def test_exception_group_members_are_walked() -> None:
    group_type = getattr(builtins, "ExceptionGroup")  # noqa: B009 - absent before 3.11
    group = group_type("two failures", [ValueError("x"), BrokenPipeError(32, "Broken pipe")])
    assert classify(group).retry is True


def test_oserror_held_in_arguments_is_found() -> None:
    class LibraryError(Exception):
        pass

    error = LibraryError("transfer failed", ConnectionResetError(104, "reset"))
    assert classify(error).retry is True


def test_outermost_known_link_decides() -> None:
    # A 404 raised while handling a reset is a 404.
    error = _chained(HTTPStatusError(url="http://h/x", status=404), ConnectionResetError(104, "r"))
    assert classify(error).retry is False


def test_exhaustion_is_looked_through() -> None:
    exhausted = _chained(
        RetriesExhausted(retries=3, elapsed=1.0, attempts=()), ConnectionResetError(104, "r")
    )
    assert classify(exhausted).retry is True


def test_errors_may_declare_themselves() -> None:
    class Flaky(Exception):
        surefetch_transient = True

    class Broken(Exception):
        surefetch_transient = False

    assert classify(Flaky()).retry is True
    assert classify(_chained(Broken(), ConnectionResetError(104, "r"))).retry is False


def test_cycles_in_the_chain_terminate() -> None:
    a = ValueError("a")
    b = ValueError("b")
    a.__context__ = b
    b.__context__ = a
    assert classify(a).retry is False


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, 3.0, Decision(True, "HTTP 429, Retry-After 3s", 3.0)),
        (503, 3.0, Decision(True, "HTTP 503, Retry-After 3s", 3.0)),
        (500, 3.0, Decision(True, "HTTP 500", None)),
        (429, None, Decision(True, "HTTP 429", None)),
        (404, None, Decision(False, "HTTP 404", None)),
        (418, None, Decision(False, "HTTP 418", None)),
        (599, None, Decision(True, "HTTP 599", None)),
    ],
)
def test_status_classification(status: int, retry_after: float | None, expected: Decision) -> None:
    assert classify_status(status, retry_after=retry_after) == expected


def test_keyboard_interrupt_is_never_retried() -> None:
    assert classify(KeyboardInterrupt()).retry is False
