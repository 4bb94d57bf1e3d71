"""A fault-injecting HTTP/1.1 server for tests: `ChaosServer` and its `Fault` scripts.

The server is written on plain ``asyncio`` streams rather than on an HTTP framework
so that a fault can land at an exact byte of a response: a connection reset after
1000 body bytes, a clean close that truncates the body, a stall in the middle of it.
Its event loop runs in a daemon thread so that synchronous tests (and synchronous
clients) can use it without an event loop of their own.

Example:
    >>> with ChaosServer(files={"/a.bin": b"x" * 10}) as server:  # doctest: +SKIP
    ...     server.script("/a.bin", [Fault.reset_after(4), Fault.status(503)])
    ...     url = server.url("/a.bin")
    ...     # first GET: 4 bytes then RST; second: 503; third: the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import http
import itertools
import logging
import os
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal
from urllib.parse import quote, unquote, urlsplit

if sys.platform == "linux":
    import fcntl
    import termios

__all__ = ["ChaosServer", "Fault", "FaultKind", "RequestRecord"]

_log = logging.getLogger(__name__)

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

_CHUNK = 1 << 20
# Drain only when this much is queued in user space: big enough that a 1 MiB chunk
# does not wake the writer for every socket-buffer-full of data.
_HIGH_WATER = 4 << 20
_HEAD_LIMIT = 64 << 10
# How long reset_after waits for the peer to acknowledge the body bytes before the
# RST; a client that stopped reading must not hold the connection forever.
_ACK_WAIT = 5.0
_NO_BODY_STATUSES = frozenset({204, 304})


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


def _non_negative(value: int, name: str) -> int:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return int(value)


def _status_code(code: int) -> int:
    if not 200 <= code <= 599:
        # 1xx would need interim-response handling that this server does not do.
        raise ValueError(f"status must be in 200..599, got {code!r}")
    return int(code)


@dataclass(slots=True)
class _Resource:
    size: int
    etag: str
    last_modified: int
    data: memoryview | None = None
    file: BinaryIO | None = None


@dataclass(slots=True)
class _MemFile:
    data: bytes
    etag: str
    last_modified: int


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]


@dataclass(slots=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    source: memoryview | BinaryIO | None = None
    offset: int = 0
    length: int = 0
    close: bool = False
    content_length: int | None = None


class _BadRequest(Exception):
    pass


class ChaosServer:
    """A real HTTP/1.1 server on 127.0.0.1 that misbehaves on cue.

    Serves GET and HEAD from *files* (path -> bytes) and/or the directory *root*,
    with ETag, Last-Modified, single-range requests, If-Range and keep-alive. Faults
    queued with `script` apply to successive requests; without one, requests are
    served cleanly. It stops itself after *max_seconds* if given.

    Example:
        >>> with ChaosServer(files={"/a.bin": b"hello"}) as server:  # doctest: +SKIP
        ...     server.script("/a.bin", [Fault.status(503)])
        ...     urllib.request.urlopen(server.url("/a.bin"))  # HTTPError 503
        ...     urllib.request.urlopen(server.url("/a.bin")).read()  # b"hello"
        ...     server.request_count("/a.bin")  # 2
    """

    def __init__(
        self,
        *,
        files: Mapping[str, bytes] | None = None,
        root: str | os.PathLike[str] | None = None,
        port: int = 0,
        max_seconds: float | None = None,
        chunk_size: int = _CHUNK,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._lock = threading.Lock()
        # With a server-side context it speaks HTTPS, for tests of certificate
        # checks; the faults are meant for plain HTTP, where bytes are exact.
        self._ssl_context = ssl_context
        self._scheme = "http" if ssl_context is None else "https"
        self._files: dict[str, _MemFile] = {}
        for path, data in (files or {}).items():
            self.add_file(path, data)
        self._root = Path(root).resolve() if root is not None else None
        self._requested_port = port
        self._port: int | None = None
        self._max_seconds = max_seconds
        self._chunk = max(1, chunk_size)
        self._scripts: dict[str | None, deque[Fault]] = {}
        self._records: list[RequestRecord] = []
        self._etag_changes = itertools.count(1)
        self._connections = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> ChaosServer:
        """Bind and start serving in a background thread; return self.

        Example:
            >>> server = ChaosServer(files={"/a": b"1"}).start()  # doctest: +SKIP
            >>> server.stop()  # doctest: +SKIP
        """
        if self._thread is not None:
            raise RuntimeError("ChaosServer can only be started once")
        self._thread = threading.Thread(target=self._run, name="ChaosServer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close every connection (even mid-stall), stop the loop and join the thread.

        Safe to call more than once, and after the server stopped by itself.

        Example:
            >>> server.stop()  # doctest: +SKIP
        """
        thread = self._thread
        if thread is None:
            return
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            # The loop may have closed already (max_seconds): nothing left to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=10)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (by `stop` or *max_seconds*).

        Return True if it has stopped, False if *timeout* ran out first.

        Example:
            >>> ChaosServer(root=".", max_seconds=1).start().wait()  # doctest: +SKIP
            True
        """
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> ChaosServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (known once started).

        Example:
            >>> server.port  # doctest: +SKIP
            43127
        """
        if self._port is None:
            raise RuntimeError("ChaosServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` without a trailing slash.

        Example:
            >>> server.base_url  # doctest: +SKIP
            'http://127.0.0.1:43127'
        """
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def url(self, path: str = "/", *, userinfo: str | None = None) -> str:
        """The URL of *path*, percent-encoded; *userinfo* (``"user:pw"``) is put in it.

        Example:
            >>> server.url("/a b.bin", userinfo="u:p")  # doctest: +SKIP
            'http://u:p@127.0.0.1:43127/a%20b.bin'
        """
        auth = f"{userinfo}@" if userinfo else ""
        return f"{self._scheme}://{auth}127.0.0.1:{self.port}{quote(_norm(path))}"

    # -- content and scripts -------------------------------------------------------

    def add_file(self, path: str, data: bytes) -> None:
        """Serve *data* at *path* (replacing any earlier file there, with a new ETag).

        Example:
            >>> server.add_file("/b.bin", b"new")  # doctest: +SKIP
        """
        data = bytes(data)
        # Content hash, so that the same bytes always get the same strong ETag.
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        entry = _MemFile(data, etag, int(time.time()))
        with self._lock:
            self._files[_norm(path)] = entry

    def script(self, path: str | None, faults: Iterable[Fault]) -> None:
        """Queue *faults* for successive requests to *path* (None: to any path).

        Each request takes the next fault of its own path's queue, else of the
        any-path queue; with both empty it is served cleanly.

        Example:
            >>> server.script("/a.bin", [Fault.status(503), Fault.drop()])  # doctest: +SKIP
        """
        key = None if path is None else _norm(path)
        faults = list(faults)
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"expected Fault, got {fault!r}")
        with self._lock:
            self._scripts.setdefault(key, deque()).extend(faults)

    def clear_scripts(self) -> None:
        """Forget every queued fault.

        Example:
            >>> server.clear_scripts()  # doctest: +SKIP
        """
        with self._lock:
            self._scripts.clear()

    # -- observations --------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the records of all requests received, oldest first.

        Example:
            >>> [(r.method, r.status) for r in server.requests]  # doctest: +SKIP
            [('GET', 503), ('GET', 200)]
        """
        with self._lock:
            return list(self._records)

    def request_count(self, path: str | None = None) -> int:
        """How many requests were received (for *path*, or in all).

        Example:
            >>> server.request_count("/a.bin")  # doctest: +SKIP
            2
        """
        key = None if path is None else _norm(path)
        with self._lock:
            return sum(1 for r in self._records if key is None or r.path == key)

    def bytes_sent(self, path: str | None = None) -> int:
        """Body bytes sent (for *path*, or in all).

        Example:
            >>> server.bytes_sent("/a.bin")  # doctest: +SKIP
            1005
        """
        key = None if path is None else _norm(path)
        with self._lock:
            return sum(r.body_bytes_sent for r in self._records if key is None or r.path == key)

    def reset_log(self) -> None:
        """Forget the request records (scripts and files stay).

        Example:
            >>> server.reset_log()  # doctest: +SKIP
        """
        with self._lock:
            self._records.clear()

    # -- the event loop thread -----------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # report to start() rather than die silently
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                _log.exception("ChaosServer loop failed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        stop_event = asyncio.Event()
        server = await asyncio.start_server(
            self._serve_connection,
            "127.0.0.1",
            self._requested_port,
            limit=_HEAD_LIMIT,
            ssl=self._ssl_context,
        )
        self._port = server.sockets[0].getsockname()[1]
        self._loop, self._stop_event = loop, stop_event
        if self._max_seconds is not None:
            loop.call_later(self._max_seconds, stop_event.set)
        self._ready.set()
        try:
            await stop_event.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = next(self._connections)
        transport = writer.transport
        try:
            transport.set_write_buffer_limits(high=_HIGH_WATER)
            while await self._serve_one(reader, writer, conn):
                pass
            if not transport.is_closing():
                # Flush first: asyncio (3.11) leaves a transport closed with a pending
                # buffer in a state where a later abort() raises.
                transport.set_write_buffer_limits(high=0)
                await writer.drain()
                writer.close()
            await writer.wait_closed()
        except (ConnectionError, TimeoutError):
            pass  # the client left: nobody to answer
        except asyncio.CancelledError:
            # stop() cancels connections; ending quietly instead of re-raising avoids
            # asyncio.streams (3.11, 3.12) logging the cancellation as an error.
            pass
        except Exception:
            _log.exception("ChaosServer: error while serving a connection")
        finally:
            # A no-op after a clean close; otherwise the connection must not linger
            # past the server, even in the middle of a stall.
            transport.abort()
            self._tasks.discard(task)

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int
    ) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # EOF between requests: the normal end of keep-alive
        except asyncio.LimitOverrunError:
            await self._answer_error(writer, conn, "", "", 431)
            return False
        try:
            request = _parse_head(head)
            await _discard_body(reader, request.headers)
        except _BadRequest:
            await self._answer_error(writer, conn, "", "", 400)
            return False

        fault = self._pop_fault(request.path)
        resource = None
        if request.method in ("GET", "HEAD") and not (fault and fault.kind == "drop"):
            resource = self._open(request.path)
        try:
            response = self._plan(request, resource, fault)
            size = resource.size if resource is not None else None
            range_start = _range_start(request.headers.get("range"), size)
            if "transfer-encoding" in request.headers:
                # A chunked request body was not read: the next request cannot be found.
                response.close = True
            if response.close:
                response.headers.append(("Connection", "close"))
            index = self._append(
                RequestRecord(
                    method=request.method,
                    path=request.path,
                    headers=request.headers,
                    status=None if fault and fault.kind == "drop" else response.status,
                    fault=fault,
                    body_bytes_sent=0,
                    range_start=range_start,
                    connection=conn,
                )
            )
            return await self._respond(writer, request, response, fault, index)
        finally:
            if resource is not None and resource.file is not None:
                resource.file.close()

    # -- request handling ----------------------------------------------------------

    def _pop_fault(self, path: str) -> Fault | None:
        with self._lock:
            for key in (path, None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _open(self, path: str) -> _Resource | None:
        with self._lock:
            mem = self._files.get(path)
        if mem is not None:
            return _Resource(len(mem.data), mem.etag, mem.last_modified, data=memoryview(mem.data))
        disk = self._disk_path(path)
        if disk is None:
            return None
        try:
            f = open(disk, "rb")  # noqa: SIM115 - closed by _serve_one after the response
        except OSError:
            return None
        st = os.fstat(f.fileno())
        # Hashing a multi-GiB file per request would dominate a benchmark, so a disk
        # file's ETag comes from its identity and stat, which change when it does.
        ident = f"{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
        etag = '"' + hashlib.sha256(ident.encode()).hexdigest()[:32] + '"'
        return _Resource(st.st_size, etag, int(st.st_mtime), file=f)

    def _disk_path(self, path: str) -> Path | None:
        if self._root is None or "\x00" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            return None
        candidate = self._root.joinpath(*parts).resolve()
        # resolve() follows symlinks, so this also refuses links that leave the root.
        if not candidate.is_relative_to(self._root) or not candidate.is_file():
            return None
        return candidate

    def _plan(self, request: _Request, res: _Resource | None, fault: Fault | None) -> _Response:
        kind = fault.kind if fault else None
        close = not _keep_alive(request)
        if fault is not None and kind in ("status", "retry_after"):
            resp = _Response(fault.code, [], close=close)
            _set_body(resp, fault.body, request.method)
            resp.headers = _merge(resp.headers, list(fault.headers))
            return resp
        if request.method not in ("GET", "HEAD"):
            resp = _Response(405, [("Allow", "GET, HEAD")], close=close)
            _set_body(resp, b"method not allowed\n", request.method)
            return resp
        if res is None:
            resp = _Response(404, [], close=close)
            _set_body(resp, b"not found\n", request.method)
            return resp

        etag, last_modified = res.etag, res.last_modified
        if kind == "change_etag":
            etag = f'"{etag.strip(chr(34))}-changed-{next(self._etag_changes)}"'
            last_modified += 3600
        validators = [
            ("ETag", etag),
            ("Last-Modified", email.utils.formatdate(last_modified, usegmt=True)),
        ]
        base = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes")]
        source: memoryview | BinaryIO | None = res.data if res.data is not None else res.file
        size = res.size
        hdrs = request.headers

        if _not_modified(hdrs, etag, last_modified):
            return _Response(304, validators, close=close)

        wanted = _parse_range(hdrs.get("range"), size)
        use_range = (
            wanted is not None
            and kind != "ignore_range"
            and _if_range_matches(hdrs.get("if-range"), etag, last_modified)
        )
        if kind == "wrong_content_range":
            start, end = wanted if use_range and wanted else (0, size - 1)
            bogus = _wrong_start(start, size)
            if bogus is None:
                # Too small a file for any wrong start inside it: claim one outside.
                resp = _Response(206, [*base, ("Content-Range", f"bytes 1-1/{size + 1}")])
                resp.content_length = 0
            else:
                end = min(max(end, bogus), size - 1)
                resp = _Response(206, [*base, ("Content-Range", f"bytes {bogus}-{end}/{size}")])
                _set_source(resp, source, bogus, end - bogus + 1, request.method)
            resp.headers += validators
            resp.close = close
            return resp
        if use_range and wanted is not None:
            start, end = wanted
            if start >= size:
                resp = _Response(416, [*base, ("Content-Range", f"bytes */{size}")])
                resp.content_length = 0
            else:
                resp = _Response(206, [*base, ("Content-Range", f"bytes {start}-{end}/{size}")])
                _set_source(resp, source, start, end - start + 1, request.method)
        else:
            resp = _Response(200, list(base))
            _set_source(resp, source, 0, size, request.method)
        resp.headers += validators
        resp.close = close
        return resp

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        request: _Request,
        resp: _Response,
        fault: Fault | None,
        index: int,
    ) -> bool:
        kind = fault.kind if fault else None
        if kind == "drop":
            return False
        writer.write(_head_bytes(resp))
        limit = fault.nbytes if fault and kind in ("reset_after", "close_after", "stall") else None
        complete = await self._send_body(writer, resp, limit, index)
        if fault is not None and kind == "reset_after":
            await _reset(writer)
            return False
        if fault is not None and kind == "stall":
            await asyncio.sleep(fault.seconds)
            return False
        if kind == "close_after" or not complete:
            return False
        await writer.drain()
        return not resp.close

    async def _send_body(
        self, writer: asyncio.StreamWriter, resp: _Response, limit: int | None, index: int
    ) -> bool:
        """Stream the body (at most *limit* bytes); return False if the file ran short."""
        todo = resp.length if limit is None else min(resp.length, limit)
        source, pos = resp.source, resp.offset
        if source is None or todo == 0:
            return True
        if isinstance(source, memoryview):
            while todo:
                n = min(self._chunk, todo)
                # Counted before the write so that a client holding the whole body
                # always finds it in the records.
                self._count(index, n)
                writer.write(source[pos : pos + n])
                await writer.drain()
                pos, todo = pos + n, todo - n
            return True
        source.seek(pos)
        while todo:
            # Page-cache reads of 1 MiB are far cheaper than a hop to a thread.
            chunk = source.read(min(self._chunk, todo))
            if not chunk:
                return False  # the file shrank under us: the body is truncated
            self._count(index, len(chunk))
            writer.write(chunk)
            await writer.drain()
            todo -= len(chunk)
        return True

    async def _answer_error(
        self, writer: asyncio.StreamWriter, conn: int, method: str, path: str, status: int
    ) -> None:
        resp = _Response(status, [("Connection", "close")], close=True)
        _set_body(resp, f"{http.HTTPStatus(status).phrase}\n".encode(), method)
        index = self._append(RequestRecord(method, path, {}, status, None, 0, None, conn))
        writer.write(_head_bytes(resp))
        await self._send_body(writer, resp, None, index)
        await writer.drain()

    def _append(self, record: RequestRecord) -> int:
        with self._lock:
            self._records.append(record)
            return len(self._records) - 1

    def _count(self, index: int, n: int) -> None:
        with self._lock:
            # reset_log() may have emptied the list mid-response.
            if index < len(self._records):
                rec = self._records[index]
                self._records[index] = replace(rec, body_bytes_sent=rec.body_bytes_sent + n)


# -- HTTP helpers ----------------------------------------------------------------------


def _norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _parse_head(head: bytes) -> _Request:
    text = head.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0]:
        raise _BadRequest(lines[0])
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(line)
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if target.startswith("/"):
        raw = target.split("?", 1)[0].split("#", 1)[0]
    elif "://" in target:
        # Absolute form, as sent to proxies; it may carry userinfo, which is ignored.
        raw = urlsplit(target).path or "/"
    else:
        raw = target
    return _Request(method, unquote(raw), version, headers)


async def _discard_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    value = headers.get("content-length")
    if value is None:
        return
    if not value.isdigit():
        raise _BadRequest(f"Content-Length: {value}")
    left = int(value)
    while left:
        chunk = await reader.read(min(left, _CHUNK))
        if not chunk:
            raise ConnectionResetError("client closed inside the request body")
        left -= len(chunk)


def _keep_alive(request: _Request) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) of a single byte range, end clamped; start >= size if unsatisfiable.

    None when there is no usable single range: RFC 9110 lets a server ignore a
    malformed Range, and answering multi-range requests in full is allowed too.
    """
    if value is None:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not first:
        if not last.isdigit():
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return (size, size)  # unsatisfiable
        return (max(size - suffix, 0), size - 1)
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return (start, start)  # unsatisfiable
    return (start, min(int(last), size - 1) if last else size - 1)


def _range_start(value: str | None, size: int | None) -> int | None:
    """The first byte asked for, for the records; None if unknowable or not asked."""
    if value is None or (size is None and value.partition("=")[2].strip().startswith("-")):
        return None  # a suffix range means nothing without a file size
    wanted = _parse_range(value, sys.maxsize if size is None else size)
    return wanted[0] if wanted else None


def _if_range_matches(value: str | None, etag: str, last_modified: int) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # strong comparison: a weak tag never matches
    return _parse_date(value) == last_modified


def _not_modified(headers: dict[str, str], etag: str, last_modified: int) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    since = _parse_date(headers.get("if-modified-since", ""))
    return since is not None and last_modified <= since


def _parse_date(value: str) -> int | None:
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def _wrong_start(start: int, size: int) -> int | None:
    if start + 1 < size:
        return start + 1
    if start != 0 and size > 0:
        return 0
    return None


def _set_body(resp: _Response, body: bytes, method: str) -> None:
    if resp.status in _NO_BODY_STATUSES:
        return
    resp.headers.insert(0, ("Content-Type", "text/plain; charset=utf-8"))
    _set_source(resp, memoryview(body), 0, len(body), method)


def _set_source(
    resp: _Response, source: memoryview | BinaryIO | None, offset: int, length: int, method: str
) -> None:
    resp.content_length = length
    if method != "HEAD":
        resp.source, resp.offset, resp.length = source, offset, length


def _merge(defaults: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    names = {name.lower() for name, _ in extra}
    return [(n, v) for n, v in defaults if n.lower() not in names] + extra


def _head_bytes(resp: _Response) -> bytes:
    try:
        phrase = http.HTTPStatus(resp.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [
        f"HTTP/1.1 {resp.status} {phrase}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "Server: surefetch-chaos",
    ]
    names = {name.lower() for name, _ in resp.headers}
    if resp.content_length is not None and "content-length" not in names:
        lines.append(f"Content-Length: {resp.content_length}")
    lines += [f"{name}: {value}" for name, value in resp.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with RST, but only once the peer holds every byte already written.

    An RST makes the kernel discard unsent data, so without the wait a client
    could see fewer than the scripted number of bytes, depending on timing.
    """
    transport = writer.transport
    transport.set_write_buffer_limits(high=0)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    sock = transport.get_extra_info("socket")
    if sock is not None and not transport.is_closing():
        await _wait_acked(sock)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _wait_acked(sock: socket.socket) -> None:
    if sys.platform != "linux":
        await asyncio.sleep(0.05)  # no portable way to ask; loopback is fast
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _ACK_WAIT
    while loop.time() < deadline:
        try:
            # TIOCOUTQ on a TCP socket: bytes written but not yet acknowledged.
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return
        if struct.unpack("i", raw)[0] == 0:
            return
        await asyncio.sleep(0.001)
