"""One process, many identical requests: one download per key, and no self-deadlock.

Before, ``fetch_many`` with 7 or more requests for one key blocked every
thread of the default executor inside the inter-process lock, and the
holder could not run its own thread work until the lock timed out.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from surefetch.testing import ChaosServer

# Every test runs on both paths of fetch_many: threads on the standard-library
# transport, and the event loop on aiohttp.
pytestmark = pytest.mark.usefixtures("transport")

BODY = {f"/file-{n}.bin": bytes([n]) * (64 << 10) for n in range(20)}


@pytest.fixture(autouse=True)
def _short_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # A deadlock shows as a LockTimeout after 20 s rather than a hang of 600 s.
    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", "20")


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files=BODY) as chaos:
        yield chaos


def test_fifty_identical_requests_make_one_download(server: ChaosServer, tmp_path: Path) -> None:
    url = server.url("/file-3.bin")
    paths = surefetch.fetch_many([url] * 50, cache=tmp_path)
    assert len(paths) == 50 and len(set(paths)) == 1
    assert paths[0].read_bytes() == BODY["/file-3.bin"]
    assert server.request_count("/file-3.bin") == 1


def test_requests_for_one_content_key_from_many_urls_make_one_download(
    tmp_path: Path,
) -> None:
    # Fifty different URLs with one sha256: one key, so one download; this
    # goes through the key's lock, not through the identical-request merge.
    data = b"same bytes" * 10_000
    files = {f"/copy-{n}.bin": data for n in range(50)}
    digest = hashlib.sha256(data).hexdigest()
    with ChaosServer(files=files) as server:
        requests = [surefetch.FetchRequest(server.url(p), sha256=digest) for p in files]
        paths = surefetch.fetch_many(requests, cache=tmp_path, concurrency=16)
        assert {p.read_bytes() for p in paths} == {data}
        assert server.request_count() == 1


def test_two_hundred_requests_over_twenty_keys_make_twenty_downloads(
    server: ChaosServer, tmp_path: Path
) -> None:
    urls = [server.url(path) for path in BODY] * 10
    paths = surefetch.fetch_many(urls, cache=tmp_path)
    assert [p.read_bytes() for p in paths] == [BODY[path] for path in BODY] * 10
    assert server.request_count() == 20


def test_concurrent_afetch_calls_for_one_key_share_one_download(
    server: ChaosServer, tmp_path: Path
) -> None:
    url = server.url("/file-7.bin")

    async def main() -> list[Path]:
        return list(
            await asyncio.gather(*(surefetch.afetch(url, cache=tmp_path) for _ in range(30)))
        )

    paths = asyncio.run(main())
    assert len(set(paths)) == 1 and paths[0].read_bytes() == BODY["/file-7.bin"]
    assert server.request_count("/file-7.bin") == 1
