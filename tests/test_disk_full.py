"""A full disk (ENOSPC): a clear error naming the URL and the path, no partial left to
keep the disk full, and a sound cache.

The real thing where the system allows it: a 2 MiB tmpfs mounted under the
test's directory (root only; skipped, saying why, where mounting is not
permitted). tmpfs charges whole 4 KiB pages for file data and nothing for
directories or empty files, so the space left can be set to the page.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from archives import Dir, File, make_archive
from surefetch._extract.archive import ArchiveFormat
from surefetch.cache import BUCKET_DOWNLOADS, Cache, CacheError, url_key
from surefetch.testing import ChaosServer, inject_fs_faults, no_wait

BIG = random.Random(11).randbytes(3 << 20)  # more than the 2 MiB disk holds
SMALL = b"a small file that fits\n"
PAGE = 4096


def _env() -> dict[str, str]:
    env = {**os.environ, "SUREFETCH_NO_RETRY_DELAY": "1"}
    for name in ("SUREFETCH_CACHE_DIR", "SUREFETCH_OFFLINE", "SUREFETCH_HTTP_RETRIES"):
        env.pop(name, None)
    return env


def _surefetch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of our own, unmounted afterwards."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a 2 MiB tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    tree = make_archive({"pkg/": Dir(), "pkg/blob.bin": File(BIG[: 3 << 19])}, ArchiveFormat.TAR)
    files = {
        "/big.bin": BIG,
        "/mirror/big.bin": BIG,
        "/small.txt": SMALL,
        "/pkg.tar": tree,
        "/page.bin": BIG[: 25 * PAGE],
    }
    with ChaosServer(files=files) as chaos:
        yield chaos


def _assert_sound_and_usable(cache: Path, server: ChaosServer) -> None:
    """No partial left, a small fetch works, and `cache verify` finds the cache sound."""
    assert list((cache / "tmp" / "partial").iterdir()) == []
    small = _surefetch("fetch", server.url("/small.txt"), "--cache-dir", str(cache))
    assert small.returncode == 0, small.stderr
    assert Path(small.stdout.strip()).read_bytes() == SMALL
    verify = _surefetch("cache", "verify", "--cache-dir", str(cache))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_download_too_big_for_the_disk_fails_clearly_and_leaves_the_space_free(
    small_disk: Path, server: ChaosServer
) -> None:
    cache = small_disk / "cache"
    url = server.url("/big.bin")
    mirror = server.url("/mirror/big.bin")
    done = _surefetch("fetch", url, "--mirror", mirror, "--cache-dir", str(cache))
    assert done.returncode == 1, done.stderr
    assert server.request_count("/mirror/big.bin") == 0  # no mirror makes the bytes fit
    partial = cache / "tmp" / "partial" / f"downloads-v1~{url_key(url)}.part"
    assert done.stderr.startswith(f"error: Failed to download {url}: the disk is full")
    assert "No space left on device" in done.stderr
    assert str(partial) in done.stderr
    assert "Traceback" not in done.stderr
    assert not partial.exists()
    assert _free(small_disk) > (2 << 20) - 16 * PAGE  # the partial's space is free again
    _assert_sound_and_usable(cache, server)


def test_a_full_disk_while_extracting_fails_clearly_and_leaves_nothing(
    small_disk: Path, server: ChaosServer
) -> None:
    """The archive fits, or its tree does, but not both: whichever write fails first."""
    cache, target = small_disk / "cache", small_disk / "out"
    url = server.url("/pkg.tar")
    done = _surefetch("fetch", url, "--extract", str(target), "--cache-dir", str(cache))
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr
    # Names the file that did not fit: the partial download or a member of the tree.
    assert str(small_disk) in done.stderr
    assert sorted(os.listdir(small_disk)) == ["cache"]  # no tree, no staging directory
    assert _free(small_disk) > (2 << 20) - 16 * PAGE
    _assert_sound_and_usable(cache, server)


def test_no_space_for_entry_json_names_the_entry_and_the_path(
    small_disk: Path, server: ChaosServer
) -> None:
    """The download fits to the page; the entry's metadata then finds no room."""
    cache = small_disk / "cache"
    Cache(cache).prepare()
    filler = small_disk / "filler"
    filler.write_bytes(bytes(_free(small_disk) - 25 * PAGE))
    assert _free(small_disk) == 25 * PAGE
    url = server.url("/page.bin")
    done = _surefetch("fetch", url, "--cache-dir", str(cache))
    assert done.returncode == 1, done.stderr
    entry = cache / "downloads-v1" / url_key(url)[:2] / url_key(url)
    assert done.stderr.startswith(f"error: Cannot commit the cache entry {entry}: ")
    assert "entry.json" in done.stderr and str(cache / "tmp") in done.stderr
    assert "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr
    assert not entry.exists()
    filler.unlink()
    _assert_sound_and_usable(cache, server)


def test_an_injected_enospc_on_entry_json_is_a_cache_error_and_the_cache_stays_sound(
    tmp_path: Path, server: ChaosServer
) -> None:
    """The same through the fault hook, so that it runs wherever mounting is not allowed."""
    cache = Cache(tmp_path / "cache")
    cache.prepare()  # writes the cache tag with write_atomic: before the fault
    url = server.url("/page.bin")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with (
        no_wait(),
        inject_fs_faults(operation="write_new", error=full) as faults,
        pytest.raises(CacheError, match="Cannot commit the cache entry") as caught,
    ):
        surefetch.fetch(url, cache=cache)
    assert faults.raised == 1
    cause = caught.value.__cause__
    assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC
    assert cause.filename is not None and cause.filename.startswith(str(cache.tmp_dir))
    assert "entry.json" in str(caught.value)
    assert cache.lookup(BUCKET_DOWNLOADS, url_key(url)) is None
    assert list((cache.tmp_dir / "partial").iterdir()) == []
    assert cache.verify().sound
    with no_wait():
        path = surefetch.fetch(url, cache=cache)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(BIG[: 25 * PAGE]).digest()
