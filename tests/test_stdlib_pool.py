"""The standard-library transport's own parts: its pool of kept connections, its proxies.

What both transports share is tested by the protocol matrix (the
``transport`` fixture); these are the decisions only this transport makes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pytest

from raw_http import Answer, RawServer
from surefetch import ConfigError
from surefetch._fetch.options import FetchArgs
from surefetch._fetch.sync_api import fetch_result, on_stdlib

BODY = b"kept alive " * 1000


class ClosingServer(RawServer):
    """Says ``Connection: keep-alive``, then closes each connection once it answered.

    ``closed`` is set when a connection is closed on the server's side: on
    loopback its FIN is then already queued at the client.
    """

    def __init__(self) -> None:
        super().__init__(lambda seen, n: Answer(200, {"Connection": "keep-alive"}, BODY))
        self.closed = threading.Semaphore(0)
        self.connections = 0

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with connection:
                connection.settimeout(10)
                with contextlib.suppress(OSError):
                    self._one(connection)
            self.closed.release()


@pytest.fixture(autouse=True)
def _stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "stdlib")


def test_a_kept_connection_the_server_closed_is_not_used(tmp_path: Path) -> None:
    with ClosingServer() as server:
        first = fetch_result(FetchArgs(server.url("/a.bin"), cache=tmp_path))
        assert server.closed.acquire(timeout=10)
        # The pool holds the first connection; the server has closed it meanwhile.
        second = fetch_result(FetchArgs(server.url("/b.bin"), cache=tmp_path))
    assert first.path.read_bytes() == second.path.read_bytes() == BODY
    assert (first.attempts, second.attempts) == (1, 1)  # no attempt was spent on it
    assert second.retries == 0
    assert server.connections == 2


def test_auto_leaves_a_proxy_spoken_to_over_tls_to_aiohttp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://127.0.0.1:9")
    args = FetchArgs("https://127.0.0.1:9/file.bin")
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "auto")
    assert not on_stdlib(args)
    assert on_stdlib(FetchArgs("http://127.0.0.1:9/file.bin"))  # no proxy for http
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "aiohttp")
    assert not on_stdlib(FetchArgs("http://127.0.0.1:9/file.bin"))


@pytest.mark.parametrize("name", ["https_proxy", "Https_Proxy"])
def test_a_proxy_variable_is_seen_whatever_its_case(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # urllib reads proxy variables case-insensitively; so must the quick scan before it.
    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "auto")
    assert on_stdlib(FetchArgs("https://127.0.0.1:9/file.bin"))
    monkeypatch.setenv(name, "https://127.0.0.1:9")
    assert not on_stdlib(FetchArgs("https://127.0.0.1:9/file.bin"))


def test_stdlib_with_a_proxy_spoken_to_over_tls_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://user:s3cret@127.0.0.1:9")
    with pytest.raises(ConfigError, match="SUREFETCH_TRANSPORT=aiohttp") as info:
        fetch_result(FetchArgs("https://127.0.0.1:9/file.bin", cache=tmp_path))
    assert "s3cret" not in str(info.value)


def test_an_extraction_always_runs_on_aiohttp() -> None:
    assert not on_stdlib(FetchArgs("http://127.0.0.1:9/a.tar.gz", extract=True))
    assert not on_stdlib(FetchArgs("http://127.0.0.1:9/a.tar.gz", extract_to="somewhere"))


def test_a_bad_transport_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "curl")
    with pytest.raises(ConfigError, match="SUREFETCH_TRANSPORT='curl' is not valid"):
        on_stdlib(FetchArgs("http://127.0.0.1:9/a.bin"))


def test_the_closing_server_closes(tmp_path: Path) -> None:
    """The server really closes: a raw client sees EOF after the reply."""
    with ClosingServer() as server:
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            received = b""
            while chunk := client.recv(65536):
                received += chunk
        assert received.endswith(BODY)
        assert b"Connection: keep-alive" in received
