"""Every public exception is caught by the type the docs give it, through real failures.

And the shape of a failure that ran out of retries is the seed's: the top
line names the operation, a "Request failed after N retries" line follows,
then the chain.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from archives import File, make_archive
from surefetch._extract.archive import ArchiveFormat
from surefetch.cache import BUCKET_DOWNLOADS, Cache, CacheError, LockTimeout
from surefetch.testing import ChaosServer, Fault

ARCHIVE = make_archive({"pkg/data.bin": File(os.urandom(1 << 20))}, ArchiveFormat.TAR_GZ)
EVIL = make_archive({"../evil.txt": File(b"x")}, ArchiveFormat.TAR_GZ)
TRUNCATED = ARCHIVE[: len(ARCHIVE) // 2]  # served whole: only the extraction can tell


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    files = {
        "/a.tar.gz": ARCHIVE,
        "/evil.tar.gz": EVIL,
        "/cut.tar.gz": TRUNCATED,
        "/plain.txt": b"plain",
    }
    with ChaosServer(files=files) as chaos:
        yield chaos


def test_a_failed_download_is_a_download_error_with_the_status_in_its_chain(
    server: ChaosServer, tmp_path: Path
) -> None:
    with pytest.raises(surefetch.DownloadError) as caught:
        surefetch.fetch(server.url("/missing"), cache=tmp_path)
    statuses = [e for e in _chain(caught.value) if isinstance(e, surefetch.HTTPStatusError)]
    assert [e.status for e in statuses] == [404]


@pytest.mark.parametrize("extract", [False, True])
def test_a_hash_mismatch_is_an_integrity_error(
    server: ChaosServer, tmp_path: Path, extract: bool
) -> None:
    with pytest.raises(surefetch.IntegrityError) as caught:
        surefetch.fetch(server.url("/a.tar.gz"), sha256="0" * 64, cache=tmp_path, extract=extract)
    assert "Hash mismatch" in _text(caught.value)
    assert server.request_count() == 1
    if extract:
        assert isinstance(caught.value, surefetch.ExtractError)


def test_a_size_mismatch_is_an_integrity_error(server: ChaosServer, tmp_path: Path) -> None:
    with pytest.raises(surefetch.IntegrityError, match="Failed to download"):
        surefetch.fetch(server.url("/plain.txt"), size=4, cache=tmp_path)


def test_an_offline_miss_is_an_offline_error(server: ChaosServer, tmp_path: Path) -> None:
    with pytest.raises(surefetch.OfflineError):
        surefetch.fetch(server.url("/plain.txt"), cache=tmp_path, offline=True)


def test_a_bad_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(surefetch.ConfigError):
        surefetch.fetch("ftp://example.org/a", cache=tmp_path)
    with pytest.raises(ValueError, match="not valid"):
        surefetch.fetch("https://example.org/a", sha256="xyz", cache=tmp_path)


def test_an_unsafe_archive_is_an_unsafe_archive_error(server: ChaosServer, tmp_path: Path) -> None:
    with pytest.raises(surefetch.UnsafeArchiveError) as caught:
        surefetch.fetch(server.url("/evil.tar.gz"), cache=tmp_path, extract=True)
    assert isinstance(caught.value, surefetch.ExtractError)


@pytest.mark.parametrize("catch", [surefetch.DownloadError, surefetch.ExtractError])
def test_an_archive_whose_download_ran_out_of_retries_is_both(
    server: ChaosServer, tmp_path: Path, catch: type[Exception]
) -> None:
    server.script("/a.tar.gz", [Fault.reset_after(1000)] * 4)
    with pytest.raises(catch) as caught:
        surefetch.fetch(server.url("/a.tar.gz"), cache=tmp_path, extract=True, retries=3)
    assert str(caught.value) == "Failed to extract archive 'a.tar.gz'"
    assert "Request failed after 3 retries" in _text(caught.value)
    assert server.request_count() == 4


@pytest.mark.parametrize("catch", [surefetch.DownloadError, surefetch.ExtractError])
def test_an_archive_that_stays_truncated_runs_out_of_retries_as_an_extract_error(
    server: ChaosServer, tmp_path: Path, catch: type[Exception]
) -> None:
    # Each body arrives "complete"; only the extraction finds it cut short,
    # so the outer loop of download-and-extract spends the budget.
    with pytest.raises(catch) as caught:
        surefetch.fetch(server.url("/cut.tar.gz"), cache=tmp_path, extract=True, retries=2)
    chain = _chain(caught.value)
    assert str(chain[0]) == "Failed to extract archive 'cut.tar.gz'"
    assert isinstance(chain[1], surefetch.RetriesExhausted)
    assert str(chain[1]).startswith("Request failed after 2 retries in ")
    assert server.request_count() == 3


def test_the_command_line_names_the_archive_first_then_the_retries(
    server: ChaosServer, tmp_path: Path
) -> None:
    server.script("/a.tar.gz", [Fault.reset_after(1000)] * 4)
    fetch = [sys.executable, "-m", "surefetch", "fetch", server.url("/a.tar.gz"), "--retries=3"]
    places = ["--extract", str(tmp_path / "tree"), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        [*fetch, *places],
        capture_output=True,
        text=True,
        env={**os.environ, "SUREFETCH_NO_RETRY_DELAY": "1"},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    # First one warning line per retry, then the error.
    assert [line.startswith("warning: ") for line in lines[:3]] == [True] * 3
    lines = lines[3:]
    assert lines[0] == "error: Failed to extract archive 'a.tar.gz'"
    assert any(line.startswith("  Caused by: Request failed after 3 retries in ") for line in lines)
    assert not any("EOFError" in line or ".part" in line for line in lines), lines


def test_the_retry_decorator_raises_retries_exhausted() -> None:
    calls = []

    @surefetch.retry(retries=2)
    def flaky() -> None:
        calls.append(1)
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
        with pytest.raises(surefetch.RetriesExhausted) as caught:
            flaky()
    assert len(calls) == 3 and caught.value.retries == 2


def test_fetch_many_failures_are_a_fetch_many_error_and_a_download_error(
    server: ChaosServer, tmp_path: Path
) -> None:
    with pytest.raises(surefetch.DownloadError) as caught:
        surefetch.fetch_many([server.url("/plain.txt"), server.url("/missing")], cache=tmp_path)
    assert isinstance(caught.value, surefetch.FetchManyError)
    assert list(caught.value.errors) == [server.url("/missing")]


def test_a_lock_held_too_long_is_a_lock_timeout_and_a_cache_error(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    key = hashlib.sha256(b"k").hexdigest()
    held, again = cache.lock(BUCKET_DOWNLOADS, key), cache.lock(BUCKET_DOWNLOADS, key, timeout=0)
    with held, pytest.raises(CacheError) as caught, again:
        pass
    assert isinstance(caught.value, LockTimeout)


def test_every_public_exception_is_a_surefetch_error() -> None:
    names = [n for n in surefetch.__all__ if n.endswith("Error") or n == "RetriesExhausted"]
    assert names
    for name in names:
        assert issubclass(getattr(surefetch, name), surefetch.SurefetchError), name


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _text(error: BaseException) -> str:
    return " | ".join(str(e) for e in _chain(error))
