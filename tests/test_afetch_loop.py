"""`afetch` awaited in a loop (issue 15), on both transports.

A plain file goes, by default, to a worker thread on the standard-library
transport, whose pool keeps connections alive for the whole process. On
aiohttp (``SUREFETCH_TRANSPORT=aiohttp``) each running event loop keeps one
session, so connections stay alive from one call to the next; the session
is closed when the loop shuts down its asynchronous generators
(``asyncio.run`` does), and a loop closed without that leaves no warning
behind either.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from raw_http import StallingServer
from surefetch.testing import ChaosServer

FILES = {f"/f{i}.bin": bytes([i]) * (1000 + i) for i in range(6)}


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files=FILES) as chaos:
        yield chaos


def _connections(server: ChaosServer) -> list[int | None]:
    return [record.connection for record in server.requests]


@pytest.fixture(params=["stdlib", "aiohttp"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    monkeypatch.setenv("SUREFETCH_TRANSPORT", name)
    return name


@pytest.fixture
def aiohttp_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "aiohttp")


@pytest.mark.usefixtures("transport")
def test_afetch_in_a_loop_reuses_one_connection(server: ChaosServer, tmp_path: Path) -> None:
    async def main() -> list[bytes]:
        paths = [await surefetch.afetch(server.url(f"/f{i}.bin"), cache=tmp_path) for i in range(4)]
        return [path.read_bytes() for path in paths]

    assert asyncio.run(main()) == [FILES[f"/f{i}.bin"] for i in range(4)]
    connections = _connections(server)
    assert len(connections) == 4
    assert len(set(connections)) == 1


@pytest.mark.usefixtures("aiohttp_transport")
def test_each_asyncio_run_has_a_session_of_its_own(server: ChaosServer, tmp_path: Path) -> None:
    for i in range(2):
        asyncio.run(surefetch.afetch(server.url(f"/f{i}.bin"), cache=tmp_path))
    first, second = _connections(server)
    assert first != second  # the first loop closed its session, connection and all


def test_on_the_standard_library_connections_outlive_each_event_loop(
    server: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "stdlib")
    for i in range(2):
        asyncio.run(surefetch.afetch(server.url(f"/f{i}.bin"), cache=tmp_path))
    first, second = _connections(server)
    assert first == second  # the process's pool, not the loop, keeps it


def _run(code: str, server: ChaosServer, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code, server.url("/f")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SUREFETCH_CACHE_DIR": str(tmp_path / "cache")},
    )


@pytest.mark.usefixtures("transport")
def test_asyncio_run_ends_without_warnings_about_unclosed_sessions(
    server: ChaosServer, tmp_path: Path
) -> None:
    code = (
        "import asyncio, gc, sys, surefetch\n"
        "async def main(first):\n"
        "    for i in range(first, first + 3):\n"
        "        await surefetch.afetch(f'{sys.argv[1]}{i}.bin')\n"
        "asyncio.run(main(0))\n"
        "asyncio.run(main(3))\n"
        "gc.collect()\n"
    )
    done = _run(code, server, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(list((tmp_path / "cache").rglob("*.bin"))) == 6


@pytest.mark.usefixtures("transport")
def test_a_loop_closed_without_shutting_down_leaves_no_unclosed_session_warning(
    server: ChaosServer, tmp_path: Path
) -> None:
    code = (
        "import asyncio, gc, sys, surefetch\n"
        "loop = asyncio.new_event_loop()\n"
        "loop.run_until_complete(surefetch.afetch(f'{sys.argv[1]}0.bin'))\n"
        "loop.close()\n"
        "asyncio.run(surefetch.afetch(f'{sys.argv[1]}1.bin'))\n"
        "gc.collect()\n"
    )
    done = _run(code, server, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Unclosed client session" not in done.stderr
    assert "Unclosed connector" not in done.stderr
    assert len(list((tmp_path / "cache").rglob("*.bin"))) == 2


def test_a_cancelled_afetch_stops_its_download_in_the_thread_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server sends part of the body, then waits for the client to close.
    # Cancelling the call must stop the worker thread's download (its socket
    # shut), not leave it waiting for its read timeout, set here far beyond
    # the server's patience.
    monkeypatch.setenv("SUREFETCH_TRANSPORT", "stdlib")
    monkeypatch.setenv("SUREFETCH_HTTP_TIMEOUT", "600")
    server = StallingServer(bytes(4096), total=100_000)
    url = server.url("/big.bin")

    async def main() -> None:
        task = asyncio.ensure_future(surefetch.afetch(url, cache=tmp_path))
        await asyncio.get_running_loop().run_in_executor(None, server.sent.wait, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    server.join()
    assert server.closed_by_client.is_set()
    assert not list(tmp_path.glob("downloads-v1/*/*"))  # nothing half-stored
