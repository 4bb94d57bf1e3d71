"""A loopback HTTP/1.1 server whose every reply a test writes by hand.

For the replies `ChaosServer` is too well-behaved to send: a ``206`` to a
request without ``Range``, totals that disagree from one reply to the next,
a redirect to wherever. Each request gets one `Answer` from the test's
function and the connection closes after it (``Connection: close``), so
every request is a connection of its own and the order is exact. The server
binds 127.0.0.1 and stops when its ``with`` block ends, or by itself after
``max_seconds``.
"""

from __future__ import annotations

import contextlib
import http
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(frozen=True)
class Seen:
    """One request as the server read it: headers have lower-case names."""

    method: str
    path: str
    headers: dict[str, str]

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass(frozen=True)
class Answer:
    """A reply: status, headers (Content-Length is added unless given), body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RawServer:
    """Answer request number ``n`` (from 0) with ``answer(seen, n)``."""

    def __init__(self, answer: Callable[[Seen, int], Answer], *, max_seconds: float = 60.0):
        self._answer = answer
        self._deadline = time.monotonic() + max_seconds
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.requests: list[Seen] = []
        self._thread = threading.Thread(target=self._serve, name="RawServer", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                with contextlib.suppress(OSError):  # the client went away
                    self._one(connection)

    def _one(self, connection: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            more = connection.recv(65536)
            if not more:
                return
            head += more
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        seen = Seen(method, target, headers)
        number = len(self.requests)
        self.requests.append(seen)
        answer = self._answer(seen, number)
        reply_headers = {"Connection": "close", **answer.headers}
        if not any(name.lower() == "content-length" for name in reply_headers):
            reply_headers["Content-Length"] = str(len(answer.body))
        phrase = http.HTTPStatus(answer.status).phrase
        text = f"HTTP/1.1 {answer.status} {phrase}\r\n"
        text += "".join(f"{name}: {value}\r\n" for name, value in reply_headers.items())
        connection.sendall(text.encode("latin-1") + b"\r\n" + answer.body)
        connection.shutdown(socket.SHUT_WR)


class StallingServer:
    """Sends a reply's head and the first bytes of its body, then waits for the client to close.

    For a download that must be stopped from outside (a failed extraction, a
    cancelled call): ``sent`` is set once the bytes are out, and
    ``closed_by_client`` once the client closed the connection within
    ``patience`` seconds, which its own read timeout must far exceed. One
    connection, then the server is done (`join`).
    """

    def __init__(self, body: bytes, *, total: int, patience: float = 60.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._head = f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode()
        self._body = body
        self._patience = patience
        self.sent = threading.Event()
        self.closed_by_client = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="StallingServer", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{path}"

    def join(self) -> None:
        self._thread.join(self._patience + 10)
        self._listener.close()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            connection.sendall(self._head + self._body)
            self.sent.set()
            connection.settimeout(self._patience)
            try:
                if connection.recv(1) == b"":
                    self.closed_by_client.set()
            except ConnectionResetError:
                self.closed_by_client.set()
            except TimeoutError:
                pass  # the client never let go: the test's assertion fails
