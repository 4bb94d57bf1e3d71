"""A fault-injecting HTTP/1.1 server for tests: `ChaosServer` and its `Fault` scripts.

The server is written on plain ``asyncio`` streams rather than on an HTTP framework
so that a fault can land at an exact byte of a response: a connection reset after
1000 body bytes, a clean close that truncates the body, a stall in the middle of it.
Its event loop runs in a daemon thread so that synchronous tests (and synchronous
clients) can use it without an event loop of their own.

Over 400 lines on purpose: it is one class whose request handling (plan a
response, then send it with the fault landing at its byte) shares the
server's state at every step; the scripts (`_scripts`) and the wire format
(`_wire`) live apart.

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
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import quote

if sys.platform == "linux":
    pass

from surefetch.testing._scripts import Fault, FaultKind, RequestRecord
from surefetch.testing._wire import (
    CHUNK,
    BadRequest,
    Request,
    Response,
    asked_range_start,
    discard_body,
    head_bytes,
    if_range_matches,
    keep_alive,
    merge,
    norm,
    not_modified,
    parse_head,
    parse_range,
    reset,
    set_body,
    set_source,
    wrong_start,
)

__all__ = ["ChaosServer", "Fault", "FaultKind", "RequestRecord"]

_log = logging.getLogger(__name__)

# Drain only when this much is queued in user space: big enough that a 1 MiB chunk
# does not wake the writer for every socket-buffer-full of data.
_HIGH_WATER = 4 << 20
_HEAD_LIMIT = 64 << 10


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


class ChaosServer:
    """A real HTTP/1.1 server on 127.0.0.1 that misbehaves on cue.

    Serves GET and HEAD from *files* (path -> bytes) and/or the directory *root*,
    with ETag, Last-Modified, single-range requests, If-Range and keep-alive. Faults
    queued with `script` apply to successive requests; without one, requests are
    served cleanly. It stops itself after *max_seconds* if given. With
    ``ranges=False`` it answers every request whole, as servers without Range
    support (``python -m http.server``) do, whatever the faults. With
    ``validators=False`` it sends no ETag and no Last-Modified, as a proxy or
    mirror that strips them does; it still honours ``Range`` (but not a range
    guarded by ``If-Range``, which it has nothing to compare with).

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
        chunk_size: int = CHUNK,
        ssl_context: ssl.SSLContext | None = None,
        ranges: bool = True,
        validators: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self.ranges = ranges
        self._validators = validators
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
        return f"{self._scheme}://{auth}127.0.0.1:{self.port}{quote(norm(path))}"

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
            self._files[norm(path)] = entry

    def script(self, path: str | None, faults: Iterable[Fault]) -> None:
        """Queue *faults* for successive requests to *path* (None: to any path).

        Each request takes the next fault of its own path's queue, else of the
        any-path queue; with both empty it is served cleanly.

        Example:
            >>> server.script("/a.bin", [Fault.status(503), Fault.drop()])  # doctest: +SKIP
        """
        key = None if path is None else norm(path)
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
        key = None if path is None else norm(path)
        with self._lock:
            return sum(1 for r in self._records if key is None or r.path == key)

    def bytes_sent(self, path: str | None = None) -> int:
        """Body bytes sent (for *path*, or in all).

        Example:
            >>> server.bytes_sent("/a.bin")  # doctest: +SKIP
            1005
        """
        key = None if path is None else norm(path)
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
            request = parse_head(head)
            await discard_body(reader, request.headers)
        except BadRequest:
            await self._answer_error(writer, conn, "", "", 400)
            return False

        fault = self._pop_fault(request.path)
        resource = None
        if request.method in ("GET", "HEAD") and not (fault and fault.kind == "drop"):
            resource = self._open(request.path)
        try:
            response = self._plan(request, resource, fault)
            size = resource.size if resource is not None else None
            range_start = asked_range_start(request.headers.get("range"), size)
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
                    target=request.target,
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

    def _plan(self, request: Request, res: _Resource | None, fault: Fault | None) -> Response:
        kind = fault.kind if fault else None
        close = not keep_alive(request)
        if fault is not None and kind in ("status", "retry_after"):
            resp = Response(fault.code, [], close=close)
            set_body(resp, fault.body, request.method)
            resp.headers = merge(resp.headers, list(fault.headers))
            return resp
        if request.method not in ("GET", "HEAD"):
            resp = Response(405, [("Allow", "GET, HEAD")], close=close)
            set_body(resp, b"method not allowed\n", request.method)
            return resp
        if res is None:
            resp = Response(404, [], close=close)
            set_body(resp, b"not found\n", request.method)
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

        if self._validators and not_modified(hdrs, etag, last_modified):
            return Response(304, validators, close=close)

        wanted = parse_range(hdrs.get("range"), size)
        if self._validators:
            guarded = if_range_matches(hdrs.get("if-range"), etag, last_modified)
        else:
            # Nothing to compare an If-Range with: RFC 9110 says send it all.
            guarded = "if-range" not in hdrs
            validators = []
        use_range = wanted is not None and self.ranges and kind != "ignore_range" and guarded
        if kind == "wrong_content_range":
            start, end = wanted if use_range and wanted else (0, size - 1)
            bogus = wrong_start(start, size)
            if bogus is None:
                # Too small a file for any wrong start inside it: claim one outside.
                resp = Response(206, [*base, ("Content-Range", f"bytes 1-1/{size + 1}")])
                resp.content_length = 0
            else:
                end = min(max(end, bogus), size - 1)
                resp = Response(206, [*base, ("Content-Range", f"bytes {bogus}-{end}/{size}")])
                set_source(resp, source, bogus, end - bogus + 1, request.method)
            resp.headers += validators
            resp.close = close
            return resp
        if use_range and wanted is not None:
            start, end = wanted
            if start >= size:
                resp = Response(416, [*base, ("Content-Range", f"bytes */{size}")])
                resp.content_length = 0
            else:
                resp = Response(206, [*base, ("Content-Range", f"bytes {start}-{end}/{size}")])
                set_source(resp, source, start, end - start + 1, request.method)
        else:
            resp = Response(200, list(base))
            set_source(resp, source, 0, size, request.method)
        resp.headers += validators
        resp.close = close
        return resp

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        request: Request,
        resp: Response,
        fault: Fault | None,
        index: int,
    ) -> bool:
        kind = fault.kind if fault else None
        if kind == "drop":
            return False
        writer.write(head_bytes(resp))
        limit = fault.nbytes if fault and kind in ("reset_after", "close_after", "stall") else None
        complete = await self._send_body(writer, resp, limit, index)
        if fault is not None and kind == "reset_after":
            await reset(writer)
            return False
        if fault is not None and kind == "stall":
            await asyncio.sleep(fault.seconds)
            return False
        if kind == "close_after" or not complete:
            return False
        await writer.drain()
        return not resp.close

    async def _send_body(
        self, writer: asyncio.StreamWriter, resp: Response, limit: int | None, index: int
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
        resp = Response(status, [("Connection", "close")], close=True)
        set_body(resp, f"{http.HTTPStatus(status).phrase}\n".encode(), method)
        index = self._append(RequestRecord(method, path, {}, status, None, 0, None, conn))
        writer.write(head_bytes(resp))
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
