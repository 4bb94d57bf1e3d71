"""`fetch --extract DIR` killed with SIGKILL: its hidden staging directory beside DIR is
found again, by `cache prune` and by the next run for the same DIR, and removed once
its owner is dead (never while it lives)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from archives import Dir, File, make_archive
from surefetch._cache.staging import digest_of
from surefetch._extract.archive import ArchiveFormat
from surefetch.cache import Cache
from surefetch.testing import ChaosServer, Fault

DATA = random.Random(7).randbytes(2 << 20)
ARCHIVE = make_archive({"pkg/": Dir(), "pkg/blob.bin": File(DATA)}, ArchiveFormat.TAR_GZ)
STALL_AT = len(ARCHIVE) // 2
WAIT = 60.0  # seconds; only reached when something is broken


def _env() -> dict[str, str]:
    env = {**os.environ, "SUREFETCH_NO_RETRY_DELAY": "1"}
    for name in ("SUREFETCH_CACHE_DIR", "SUREFETCH_OFFLINE", "SUREFETCH_HTTP_RETRIES"):
        env.pop(name, None)
    return env


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def _surefetch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


def _leftovers(parent: Path) -> list[str]:
    """Hidden siblings of ``parent / 'out'``: staging directories."""
    return sorted(item.name for item in parent.iterdir() if item.name.startswith(".out."))


class Run:
    def __init__(self, server: ChaosServer, root: Path) -> None:
        self.server, self.root = server, root
        self.target, self.cache = root / "work" / "out", root / "cache"
        self.url = server.url("/pkg.tar.gz")

    def fetch_args(self) -> list[str]:
        return ["fetch", self.url, "--extract", str(self.target), "--cache-dir", str(self.cache)]

    def kill_mid_download(self) -> None:
        """Start an extraction that stalls half way, and SIGKILL it there."""
        self.server.script("/pkg.tar.gz", [Fault.stall(120, after=STALL_AT)])
        writer = subprocess.Popen(
            [sys.executable, "-m", "surefetch", *self.fetch_args()],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        partials = self.cache / "tmp" / "partial"

        def half_way() -> bool:
            parts = list(partials.glob("*.part")) if partials.is_dir() else []
            return bool(parts) and parts[0].stat().st_size >= STALL_AT

        try:
            _wait_for(half_way)
            # The writer is alive: prune must leave its staging directory alone.
            assert len(_leftovers(self.target.parent)) == 1
            prune = self.prune()
            assert prune.returncode == 0, prune.stderr
            assert len(_leftovers(self.target.parent)) == 1
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        assert writer.returncode == -signal.SIGKILL
        self.server.clear_scripts()
        assert len(_leftovers(self.target.parent)) == 1, "the kill left no staging directory"
        assert not self.target.exists()

    def prune(self) -> subprocess.CompletedProcess[str]:
        return _surefetch("cache", "prune", "--cache-dir", str(self.cache), "--older-than", "0")

    def assert_no_staging_bookkeeping(self) -> None:
        assert not [p.name for p in (self.cache / "tmp").iterdir() if p.name != "partial"]
        assert not [p.name for p in (self.cache / "locks").iterdir() if "staging" in p.name]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    (tmp_path / "work").mkdir()
    with ChaosServer(files={"/pkg.tar.gz": ARCHIVE}) as server:
        yield Run(server, tmp_path)


def test_prune_removes_the_staging_directory_of_a_killed_extract(run: Run) -> None:
    run.kill_mid_download()
    done = run.prune()
    assert done.returncode == 0, done.stderr
    assert _leftovers(run.target.parent) == []
    # The staging tree, and the partial download with its sidecar.
    assert done.stdout.startswith("Removed 3 leftover items")
    run.assert_no_staging_bookkeeping()


def test_the_next_extract_to_the_same_target_removes_a_dead_staging_directory(run: Run) -> None:
    run.kill_mid_download()
    done = _surefetch(*run.fetch_args())
    assert done.returncode == 0, done.stderr
    assert (run.target / "pkg" / "blob.bin").read_bytes() == DATA
    assert _leftovers(run.target.parent) == []
    run.assert_no_staging_bookkeeping()


def test_a_staging_directory_the_cache_does_not_know_is_left_alone(run: Run) -> None:
    """One made with another cache (or by hand): its owner cannot be known from here."""
    foreign = run.target.parent / ".out.surefetch-staging-0123456789abcdef"
    (foreign / "tree").mkdir(parents=True)
    done = _surefetch(*run.fetch_args())
    assert done.returncode == 0, done.stderr
    assert run.prune().returncode == 0
    assert _leftovers(run.target.parent) == [foreign.name]
    assert (foreign / "tree").is_dir()


def test_a_claim_never_sends_prune_outside_a_staging_directory(tmp_path: Path) -> None:
    """A damaged or planted claim names a directory that is not a staging directory, or
    not the one the claim is named after: prune drops the claim and touches nothing."""
    cache = Cache(tmp_path / "cache")
    cache.prepare()
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "keep").write_text("keep")
    disguised = tmp_path / ".out.surefetch-staging-0123456789abcdef"
    disguised.mkdir()
    claims = {
        digest_of(str(victim)): str(victim),  # not a staging directory's name
        "0" * 32: str(disguised),  # a staging name, but not the claim's own
    }
    for digest, path in claims.items():
        (cache.tmp_dir / f"staging~{digest}.claim").write_text(path)
    report = cache.prune(older_than=0)
    assert report.staging == 2 and report.bytes == 0
    assert (victim / "keep").read_text() == "keep" and disguised.is_dir()
    assert os.listdir(cache.tmp_dir) == ["partial"]
    assert not [name for name in os.listdir(cache.locks_dir) if "staging" in name]
