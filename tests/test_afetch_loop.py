"""`afetch` awaited in a loop (issue 15): one aiohttp session per running event loop.

Each loop keeps one session, so connections stay alive from one call to the
next; the session is closed when the loop shuts down its asynchronous
generators (``asyncio.run`` does), and a loop closed without that leaves no
warning behind either.
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
from surefetch.testing import ChaosServer

FILES = {f"/f{i}.bin": bytes([i]) * (1000 + i) for i in range(6)}


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files=FILES) as chaos:
        yield chaos


def _connections(server: ChaosServer) -> list[int | None]:
    return [record.connection for record in server.requests]


def test_afetch_in_a_loop_reuses_one_connection(server: ChaosServer, tmp_path: Path) -> None:
    async def main() -> list[bytes]:
        paths = [await surefetch.afetch(server.url(f"/f{i}.bin"), cache=tmp_path) for i in range(4)]
        return [path.read_bytes() for path in paths]

    assert asyncio.run(main()) == [FILES[f"/f{i}.bin"] for i in range(4)]
    connections = _connections(server)
    assert len(connections) == 4
    assert len(set(connections)) == 1


def test_each_asyncio_run_has_a_session_of_its_own(server: ChaosServer, tmp_path: Path) -> None:
    for i in range(2):
        asyncio.run(surefetch.afetch(server.url(f"/f{i}.bin"), cache=tmp_path))
    first, second = _connections(server)
    assert first != second  # the first loop closed its session, connection and all


def _run(code: str, server: ChaosServer, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code, server.url("/f")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SUREFETCH_CACHE_DIR": str(tmp_path / "cache")},
    )


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
