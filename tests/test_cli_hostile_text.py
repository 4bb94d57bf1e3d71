"""What a server says never drives the terminal: control characters escaped, length capped.

A reason phrase (or any string from the network) may carry ESC, BEL and OSC
sequences that retitle a terminal, clear it or hide text, and kilobytes of
junk. The server here is a raw socket on loopback, because the chaos server
speaks only well-formed HTTP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from surefetch._errors import HTTPStatusError, printable

ATTACK = b"\x1b]0;pwned\x07\x1b[2J"
# ESC and CSI sequences, BEL, a C1 control (0x9b, a one-byte CSI), a right-to-left
# override (U+202E), a zero-width space (U+200B), an invalid UTF-8 byte, DEL.
JUNK = b"\x1b[8mhidden\x1b[0m\x9b31m\x07\xe2\x80\xae\xe2\x80\x8b\xff\x7f;"


class HostileServer:
    """Answers every request on 127.0.0.1 with ``reply``; stops when the block ends."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/f.bin"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                self.requests += 1
                connection.sendall(self.reply)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


def status_reply(reason: bytes) -> bytes:
    return b"HTTP/1.1 503 " + reason + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env["SUREFETCH_CACHE_DIR"] = str(tmp_path / "cache")
    env["SUREFETCH_NO_RETRY_DELAY"] = "1"
    return env


def surefetch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    # A real process with real pipes: what reaches stderr is what a terminal would get.
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args], env=env, capture_output=True, timeout=60
    )


def assert_inert(stream: bytes) -> None:
    """No byte or character that a terminal would act on, other than the newline."""
    assert not [b for b in stream if (b < 0x20 and b != 0x0A) or b == 0x7F], stream[:300]
    text = stream.decode("utf-8")  # also: nothing undecodable
    assert [c for c in text if c != "\n" and not c.isprintable()] == [], text[:300]


@pytest.fixture(params=[8000, 9000], ids=["8KB-reason", "9KB-reason"])
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileServer]:
    # 8 KB fits the client's limit for a status line; 9 KB does not, and the
    # client's own error quotes the bytes it got instead.
    size = request.param
    reason = (ATTACK + JUNK * (size // len(JUNK)))[:size]
    with HostileServer(status_reply(reason)) as server:
        yield server


def test_a_hostile_reason_phrase_reaches_stderr_inert_and_short(
    hostile: HostileServer, env: dict[str, str]
) -> None:
    done = surefetch("fetch", hostile.url, "--retries", "1", env=env)
    assert done.returncode == 1, done.stderr
    assert hostile.requests >= 1  # 2 for the 8 KB reason; the 9 KB one is not retried
    # One warning line per retry comes first, as inert as the error.
    error = done.stderr[done.stderr.index(b"error: ") :]
    assert error.startswith(f"error: Failed to download {hostile.url}".encode())
    assert_inert(done.stderr)
    assert done.stdout == b""
    assert len(done.stderr) < 1500, done.stderr


def test_verbose_output_and_logs_are_inert_and_short_too(
    hostile: HostileServer, env: dict[str, str]
) -> None:
    # -v lists every attempt; a mirror makes the failover's log line quote the error.
    done = surefetch("fetch", hostile.url, "--mirror", hostile.url, "--retries", "1", "-v", env=env)
    assert done.returncode == 1
    assert hostile.requests >= 2  # the URL and its mirror
    assert_inert(done.stderr)
    assert len(done.stderr) < 6000, done.stderr


def test_json_mode_prints_nothing_from_the_server_on_stdout(
    hostile: HostileServer, env: dict[str, str]
) -> None:
    done = surefetch("fetch", hostile.url, "--retries", "0", "--json", env=env)
    assert done.returncode == 1
    assert done.stdout == b""
    assert_inert(done.stderr)


def test_the_error_itself_holds_an_inert_short_reason() -> None:
    # The library's users print errors too: the reason is cleaned where it enters.
    reason = "Busy\x1b]0;pwned\x07" + "x" * 9000
    error = HTTPStatusError(url="https://h/f", status=503, reason=reason)
    assert error.reason.startswith("Busy\\x1b]0;pwned\\x07x")
    assert len(error.reason) <= 100
    assert str(error).isprintable() and len(str(error)) < 200


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Service Unavailable", "Service Unavailable"),
        ("\x1b[2J\x07", "\\x1b[2J\\x07"),
        ("tab\there\r\nnext", "tab\\there\\r\\nnext"),
        ("\x9b31m", "\\x9b31m"),  # a C1 control: a CSI on some terminals
        ("abc\u202eevil", "abc\\u202eevil"),  # a right-to-left override hides text
        ("\udcff", "\\udcff"),  # an undecodable byte, kept by surrogateescape
        ("Größe ok ✓", "Größe ok ✓"),  # printable text stays as it is
        ("x" * 20, "xxxxxxx..."),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text, limit=10 if len(text) == 20 else None) == shown
