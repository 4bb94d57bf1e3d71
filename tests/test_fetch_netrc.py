"""Credentials from the netrc file (``NETRC``, else ``~/.netrc``), on both transports.

curl ``--netrc-optional``, requests and pip send them; so does surefetch, for
the host of each request whose URL carries no credentials of its own.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from surefetch.testing import ChaosServer

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

DATA = b"behind a login " * 1000


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA}) as chaos:
        yield chaos


@pytest.fixture
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(path))
    return path


def _sent(server: ChaosServer) -> list[str | None]:
    return [r.headers.get("authorization") for r in server.requests]


def test_the_netrc_entry_of_the_host_is_sent(
    server: ChaosServer, netrc: Path, tmp_path: Path
) -> None:
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    path = surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "cache")
    assert path.read_bytes() == DATA
    assert _sent(server) == [_basic("alice", "s3cret")]


def test_the_default_entry_serves_a_host_without_its_own(
    server: ChaosServer, netrc: Path, tmp_path: Path
) -> None:
    netrc.write_text(
        "machine elsewhere.invalid login bob password b\ndefault login any password d\n"
    )
    surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "cache")
    assert _sent(server) == [_basic("any", "d")]


def test_another_host_entry_sends_nothing(server: ChaosServer, netrc: Path, tmp_path: Path) -> None:
    netrc.write_text("machine localhost login alice password s3cret\n")
    surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "cache")
    assert _sent(server) == [None]


def test_credentials_in_the_url_win_over_the_netrc_file(
    server: ChaosServer, netrc: Path, tmp_path: Path
) -> None:
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    url = server.url("/data.bin", userinfo="carol:pw")
    assert surefetch.fetch(url, cache=tmp_path / "cache").read_bytes() == DATA
    assert _sent(server) == [_basic("carol", "pw")]


def test_a_changed_netrc_file_is_read_again(
    server: ChaosServer, netrc: Path, tmp_path: Path
) -> None:
    netrc.write_text("machine 127.0.0.1 login alice password one\n")
    surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "first")
    netrc.write_text("machine 127.0.0.1 login alice password second\n")
    surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "second")
    assert _sent(server) == [_basic("alice", "one"), _basic("alice", "second")]


def test_a_netrc_file_that_cannot_be_parsed_is_reported_and_ignored(
    server: ChaosServer, netrc: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An unknown top-level word: the whole file is refused, as requests refuses it.
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\nnonsense here\n")
    with caplog.at_level(logging.WARNING, logger="surefetch"):
        path = surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "cache")
    assert path.read_bytes() == DATA
    assert _sent(server) == [None]
    assert any(str(netrc) in r.getMessage() for r in caplog.records), caplog.text


def test_no_netrc_file_sends_nothing(server: ChaosServer, netrc: Path, tmp_path: Path) -> None:
    assert not netrc.exists()
    surefetch.fetch(server.url("/data.bin"), cache=tmp_path / "cache")
    assert _sent(server) == [None]
