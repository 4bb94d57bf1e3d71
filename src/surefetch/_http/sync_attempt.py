"""One request on the standard-library transport: the twin of `surefetch._http.attempt`.

`http.client` sends the request and parses the reply; every decision (the
range to ask for, what a reply means, where a redirect leads, whether the
body ended where it should) is made by the shared code of
`surefetch._http.exchange` and `surefetch._http.redirects`, which the aiohttp
attempt calls too. This module sends the request, follows redirects and
keeps connections alive; `surefetch._http.sync_body` reads the body.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Mapping
from typing import NamedTuple

from surefetch._http.exchange import (
    check_body_end,
    not_modified,
    range_note,
    request_headers,
    take_reply,
)
from surefetch._http.headers import shown_headers
from surefetch._http.netrc_auth import with_netrc_credentials
from surefetch._http.partial import PartialFile
from surefetch._http.redirects import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    follow_redirect,
    too_many_redirects,
)
from surefetch._http.stats import DownloadStats, ProgressCallback
from surefetch._http.stdlib_pool import USER_AGENT, Pool, Target, pool, target_of
from surefetch._http.sync_body import read_body
from surefetch._log import DEBUG, logger
from surefetch._url import ParsedURL, redact_url

# A redirect's body up to this size is read so that the connection stays alive.
_DRAIN_LIMIT = 64 << 10


class DeadlinePassed(Exception):
    """The fetch's deadline passed during a request: never retried, told by the caller."""

    surefetch_transient = False


class DownloadStopped(Exception):
    """The download was asked to stop (`Stop`): never retried, and no mirror is tried."""

    surefetch_transient = False


class Stop:
    """Asks a download running in another thread to stop, at once.

    The download checks it before each attempt and after each piece of the
    body; `set` also shuts down the socket a body is being read from, so a
    read waiting on a silent server returns now rather than at its timeout.
    The download then raises `DownloadStopped`, with every byte it received
    written to the partial file.

    Example:
        >>> stop = Stop()
        >>> stop.set()
        >>> stop.is_set()
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._sock: socket.socket | None = None

    def set(self) -> None:
        # Under the lock: the download closes the socket only after it
        # stopped watching it, so this never shuts a reused descriptor.
        with self._lock:
            self._set = True
            if self._sock is not None:
                # OSError: the connection is gone already, and the read has ended.
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def is_set(self) -> bool:
        return self._set

    def check(self) -> None:
        """Raise `DownloadStopped` if the download was asked to stop."""
        if self._set:
            raise DownloadStopped("the download was stopped")

    def watch(self, sock: socket.socket | None) -> None:
        """The socket that `set` shuts down (None: none any more); checks first."""
        with self._lock:
            self._sock = sock
        if sock is not None:
            self.check()


class Timeouts(NamedTuple):
    """How long to wait: to connect, for the next bytes, and the whole fetch's end.

    ``deadline`` is a `time.monotonic` instant, or None.

    Example:
        >>> Timeouts(connect=10.0, read=30.0, deadline=None).for_read()
        30.0
    """

    connect: float
    read: float
    deadline: float | None

    def _bounded(self, seconds: float) -> float:
        if self.deadline is None:
            return seconds
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed
        return min(seconds, left)

    def for_connect(self) -> float:
        """The connect timeout, cut to what is left before the deadline."""
        return self._bounded(self.connect)

    def for_read(self) -> float:
        """The read timeout, cut to what is left before the deadline."""
        return self._bounded(self.read)

    def passed(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline


def download_attempt_sync(
    url: ParsedURL,
    partial: PartialFile,
    *,
    authorization: str | None,
    checked: bool,
    allow_insecure_redirects: bool = False,
    stats: DownloadStats,
    progress: ProgressCallback | None = None,
    timeouts: Timeouts,
    conditional: Mapping[str, str] | None = None,
    connections: Pool = pool,
    stop: Stop | None = None,
) -> bool:
    """Make one request for ``url`` and append its body to ``partial``.

    What `surefetch._http.attempt.download_attempt` does (True for a
    ``304`` to a revalidation), on `http.client` and the process's kept
    connections. Raises `DeadlinePassed` when the deadline passes while it
    runs. With ``stop``, raises `DownloadStopped` once it is set.
    """
    headers, asked_if_changed = request_headers(
        partial, authorization=authorization, checked=checked, conditional=conditional
    )
    asked_from = partial.size
    exchange = _get(url.url, headers, allow_insecure_redirects, timeouts, connections)
    response = exchange.response
    if not_modified(
        response.status, response.getheaders(), asked_if_changed=asked_if_changed, stats=stats
    ):
        exchange.discard_body()  # a 304 has none: the connection stays alive
        return True
    done = False
    try:
        verdict = take_reply(
            partial,
            url,
            status=response.status,
            reason=response.reason or "",
            header=response.getheader,
            content_length=_content_length(response),
            sent=headers,
            asked_from=asked_from,
            stats=stats,
        )
        sock = exchange.connection.sock
        if stop is not None:
            stop.watch(sock)
        try:
            read_body(
                response,
                partial,
                verdict.total,
                progress,
                sock=sock,
                read_timeout=None if timeouts.deadline is None else timeouts.for_read,
                stopped=None if stop is None else stop.is_set,
            )
        except TimeoutError:
            if timeouts.passed():
                raise DeadlinePassed from None
            raise
        finally:
            if stop is not None:
                stop.watch(None)
        if stop is not None:
            stop.check()  # a body cut short by the stop is not judged
        check_body_end(partial, url, verdict)
        done = True
    finally:
        exchange.finish(reusable=done)
    return False


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.getheader("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


class _Exchange:
    """A reply being read, and the connection it came on (given back once read whole)."""

    def __init__(
        self,
        target: Target,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        connections: Pool,
    ) -> None:
        self.target = target
        self.connection = connection
        self.response = response
        self._connections = connections

    def finish(self, *, reusable: bool) -> None:
        """Give the connection back if its reply was read to the end, else close it."""
        response = self.response
        if reusable and response.isclosed() and not response.will_close:
            self._connections.give_back(self.target, self.connection)
        else:
            self.connection.close()

    def discard_body(self) -> None:
        """Read a small body to its end (so the connection stays alive), else close."""
        response = self.response
        length = response.length
        reusable = False
        if length is not None and length <= _DRAIN_LIMIT and not response.will_close:
            try:
                response.read()
                reusable = True
            except (OSError, http.client.HTTPException):
                pass  # the connection is spent: closed below
        self.finish(reusable=reusable)


def _get(
    url: str,
    headers: dict[str, str],
    allow_insecure: bool,
    timeouts: Timeouts,
    connections: Pool,
) -> _Exchange:
    """GET ``url``, following redirects (each judged before it is followed)."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        logger.info("GET %s%s", redact_url(current), range_note(headers))
        headers = with_netrc_credentials(current, headers)
        sent_headers = {"User-Agent": USER_AGENT, **headers}
        if logger.isEnabledFor(DEBUG):
            logger.debug("Request headers: %s", shown_headers(sent_headers))
        sent = time.monotonic()
        target = target_of(current)
        exchange = _request(target, sent_headers, timeouts, connections)
        response = exchange.response
        location = response.getheader("Location")
        logger.info(
            "%d %s from %s (%.3fs)",
            response.status,
            response.reason or "",
            redact_url(current),
            time.monotonic() - sent,
        )
        if logger.isEnabledFor(DEBUG):
            logger.debug("Response headers: %s", shown_headers(response.getheaders()))
        if response.status not in REDIRECT_STATUSES or location is None:
            return exchange
        exchange.discard_body()  # a redirect's body is not wanted
        current, headers = follow_redirect(
            current, location, headers, allow_insecure=allow_insecure
        )
    raise too_many_redirects(url, current)


def _request(
    target: Target, headers: dict[str, str], timeouts: Timeouts, connections: Pool
) -> _Exchange:
    """Send the request for ``target`` and read its status line and headers."""
    proxy = target.proxy
    # Through a tunnel (https) the proxy's credentials went with the CONNECT.
    if proxy is not None and proxy.authorization is not None and target.scheme == "http":
        headers = {**headers, "Proxy-Authorization": proxy.authorization}
    connection = connections.take(target, timeout=timeouts.for_connect())
    try:
        sock = connection.sock
        if sock is not None:
            sock.settimeout(timeouts.for_read())
        connection.request("GET", target.path, headers=headers)
        response = connection.getresponse()
    except TimeoutError:
        connection.close()
        if timeouts.passed():
            raise DeadlinePassed from None
        raise
    except BaseException:
        connection.close()
        raise
    return _Exchange(target, connection, response, connections)
