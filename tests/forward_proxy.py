"""A loopback forward proxy for tests: plain requests in absolute form, and CONNECT tunnels.

It records what each client asked for (the request line's target and its
``Proxy-Authorization``), can demand credentials (a ``407`` without them),
and otherwise passes bytes through unchanged, both ways, until either side
closes. Binds 127.0.0.1; stops when its ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Asked:
    """One request the proxy read: method, target as sent, its Proxy-Authorization."""

    method: str
    target: str
    authorization: str | None


class ForwardProxy:
    """A forward proxy on 127.0.0.1 that requires ``authorization`` when it is given."""

    def __init__(self, *, authorization: str | None = None) -> None:
        self._authorization = authorization
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.asked: list[Asked] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="ForwardProxy", daemon=True)

    def url(self, userinfo: str | None = None) -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def __enter__(self) -> ForwardProxy:
        self._accepting.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._accepting.join()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _version = line.split(" ", 2)
            headers = [h for h in lines if h]
            authorization = next(
                (
                    h.split(":", 1)[1].strip()
                    for h in headers
                    if h.lower().startswith("proxy-authorization:")
                ),
                None,
            )
            self.asked.append(Asked(method, target, authorization))
            if self._authorization is not None and authorization != self._authorization:
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                    b"Connection: close\r\n\r\n"
                )
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = rest
            else:
                parts = urlsplit(target)
                upstream = socket.create_connection(
                    (parts.hostname or "", parts.port or 80), timeout=10
                )
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                # One request per connection upstream: the reply ends the tunnel-less pipe.
                dropped = ("proxy-authorization:", "proxy-connection:", "connection:")
                kept = [h for h in headers if not h.lower().startswith(dropped)]
                kept.append("Connection: close")
                first = (
                    f"{method} {path} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in kept) + "\r\n"
                ).encode("latin-1") + rest
            with upstream:
                if first:
                    upstream.sendall(first)
                self._pipe(client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until one side closes or the proxy stops."""
        peers = {client: upstream, upstream: client}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in ready:
                try:
                    data = sock.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    with contextlib.suppress(OSError):
                        peers[sock].shutdown(socket.SHUT_WR)
                    return
                try:
                    peers[sock].sendall(data)
                except OSError:
                    return
