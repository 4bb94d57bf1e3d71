"""Fetching in a loop (issue 15): one TLS context, kept-alive connections, one loop thread.

The synchronous API runs on one event loop thread per process that keeps
one HTTP session; these tests check what that promises: connections are
reused from call to call, the TLS context is built once (and again only
when ``SSL_CERT_FILE`` changes, never for ``http``), threads and callers
that run an event loop are served, a forked child starts afresh, and the
interpreter exits without warnings.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import surefetch
from surefetch.cache import Cache, Entry
from surefetch.testing import ChaosServer

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

FILES = {f"/f{i}.bin": bytes([i]) * (1000 + i) for i in range(12)}


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files=FILES) as chaos:
        yield chaos


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[ChaosServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with ChaosServer(files=FILES, ssl_context=context) as chaos:
        yield chaos


def _connections(server: ChaosServer) -> list[int | None]:
    return [record.connection for record in server.requests]


def test_synchronous_fetches_reuse_one_connection(server: ChaosServer, tmp_path: Path) -> None:
    for i in range(4):
        path = surefetch.fetch(server.url(f"/f{i}.bin"), cache=tmp_path)
        assert path.read_bytes() == FILES[f"/f{i}.bin"]
    connections = _connections(server)
    assert len(connections) == 4
    assert len(set(connections)) == 1


def test_the_tls_context_is_built_once_and_again_only_when_the_bundle_changes(
    tls_server: ChaosServer,
    server: ChaosServer,
    authority: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    built: list[str | None] = []
    create = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        built.append(kwargs.get("cafile"))  # type: ignore[arg-type]
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    first, second = tmp_path / "first.pem", tmp_path / "second.pem"
    authority.cert_pem.write_to_path(str(first))
    authority.cert_pem.write_to_path(str(second))
    monkeypatch.setenv("SSL_CERT_FILE", str(first))
    for i in range(3):
        surefetch.fetch(tls_server.url(f"/f{i}.bin"), cache=tmp_path / "cache")
    assert built == [str(first)]
    assert len(set(_connections(tls_server))) == 1  # and the TLS connection is kept alive

    monkeypatch.setenv("SSL_CERT_FILE", str(second))
    surefetch.fetch(server.url("/f0.bin"), cache=tmp_path / "cache")
    assert built == [str(first)]  # plain http needs no context
    surefetch.fetch(tls_server.url("/f3.bin"), cache=tmp_path / "cache")
    surefetch.fetch(tls_server.url("/f4.bin"), cache=tmp_path / "cache")
    assert built == [str(first), str(second)]


def test_no_thread_is_started_per_small_download(
    server: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    surefetch.fetch(server.url("/f0.bin"), cache=tmp_path)  # the loop thread, its workers
    started: list[str] = []
    start = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting)
    for i in range(1, 8):
        surefetch.fetch(server.url(f"/f{i}.bin"), cache=tmp_path)
    assert started == []


def test_eight_threads_fetch_at_once(server: ChaosServer, tmp_path: Path) -> None:
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            # Two threads per file: they also share its single flight.
            results[i] = surefetch.fetch(server.url(f"/f{i % 4}.bin"), cache=tmp_path).read_bytes()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == {i: FILES[f"/f{i % 4}.bin"] for i in range(8)}
    assert server.request_count() == 4


def test_a_caller_that_runs_an_event_loop_is_served(server: ChaosServer, tmp_path: Path) -> None:
    surefetch.fetch(server.url("/f0.bin"), cache=tmp_path)

    async def main() -> bytes:
        return surefetch.fetch(server.url("/f1.bin"), cache=tmp_path).read_bytes()

    assert asyncio.run(main()) == FILES["/f1.bin"]
    assert len(set(_connections(server))) == 1  # on the same kept-alive connection


def test_a_progress_callback_may_fetch(server: ChaosServer, tmp_path: Path) -> None:
    """A callback runs on the loop thread; a fetch from there runs beside it, not on it."""
    inner: list[bytes] = []

    def progress(received: int, total: int | None) -> None:
        if not inner:
            inner.append(surefetch.fetch(server.url("/f2.bin"), cache=tmp_path).read_bytes())

    path = surefetch.fetch(server.url("/f1.bin"), cache=tmp_path, progress=progress)
    assert path.read_bytes() == FILES["/f1.bin"]
    assert inner == [FILES["/f2.bin"]]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists only on POSIX")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_fetches_on_connections_of_its_own(
    server: ChaosServer, tmp_path: Path
) -> None:
    surefetch.fetch(server.url("/f0.bin"), cache=tmp_path)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            path = surefetch.fetch(server.url("/f1.bin"), cache=tmp_path)
            code = 0 if path.read_bytes() == FILES["/f1.bin"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    surefetch.fetch(server.url("/f2.bin"), cache=tmp_path)
    parent, child, parent_again = _connections(server)
    assert child != parent
    assert parent_again == parent  # the child left the parent's connection alone


def test_the_interpreter_exits_without_warnings(
    server: ChaosServer, tls_server: ChaosServer, authority: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    # Registered first, so it runs after surefetch's own exit handler.
    code = (
        "import atexit, sys, threading\n"
        "def check():\n"
        "    alive = [t.name for t in threading.enumerate() if t.name.startswith('surefetch')]\n"
        "    if alive: print('still running at exit:', alive, file=sys.stderr)\n"
        "atexit.register(check)\n"
        "import surefetch\n"
        "for url in sys.argv[1:]:\n"
        "    surefetch.fetch(url)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            code,
            server.url("/f0.bin"),
            tls_server.url("/f1.bin"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "SSL_CERT_FILE": str(bundle),
            "SUREFETCH_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(list((tmp_path / "cache").rglob("*.bin"))) == 2


class CountingCache(Cache):
    """A cache that counts its lookups (each one opens and parses entry.json)."""

    lookups = 0

    def lookup(self, bucket: str, key: str) -> Entry | None:
        self.lookups += 1
        return super().lookup(bucket, key)


def test_a_miss_reads_the_entry_once_before_the_lock_and_once_under_it(
    server: ChaosServer, tmp_path: Path, transport: str
) -> None:
    if transport != "stdlib":
        pytest.skip("the aiohttp transport's store looks up on its own (unchanged)")
    cache = CountingCache(tmp_path)
    surefetch.fetch(server.url("/f0.bin"), cache=cache)
    assert cache.lookups == 2
    cache.lookups = 0
    surefetch.fetch(server.url("/f0.bin"), cache=cache)  # a hit
    assert cache.lookups == 1
    cache.lookups = 0
    surefetch.fetch(server.url("/f0.bin"), cache=cache, refresh=True)
    assert cache.lookups == 0
    assert len(server.requests) == 2
