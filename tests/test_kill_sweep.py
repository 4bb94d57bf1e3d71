"""A SIGKILL sweep: fetch-and-extract killed at 30 points of its run, then run again.

For each point a real process is killed with SIGKILL; the next run must
succeed with the right files, `cache verify` must find the cache sound, and
`cache prune` must leave no staging directory or temporary behind. The
points are reached without timing luck: the server stalls at a byte offset
and the test waits until the partial file holds that many bytes, or a
filesystem hook in the child parks it at a step of the commit.
"""

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

from archives import File, make_archive
from surefetch._extract.archive import ArchiveFormat
from surefetch.cache import Cache
from surefetch.testing import ChaosServer, Fault

_random = random.Random(10)
FILES = {f"pkg/part-{n}.bin": _random.randbytes(160 << 10) for n in range(12)}
ARCHIVE = make_archive({name: File(data) for name, data in FILES.items()}, ArchiveFormat.TAR_GZ)
BYTE_POINTS = [len(ARCHIVE) * k // 25 for k in range(1, 25)]  # 24 points in the body
HOOK_POINTS = ["rename", "persist_dir", "write_atomic"]  # 3 points in the commit
REWIND_POINTS = [len(ARCHIVE) * k // 4 for k in range(1, 4)]  # 3 points in a restarted stream

# The child: park at a filesystem step when asked (the test kills it there),
# then run the fetch the way the mode says.
CHILD = r"""
import os, sys, time
park_at, marker, mode, url, cache, target = sys.argv[1:7]
if park_at != "-":
    from surefetch._fs import faults
    def park(operation, path, other):
        if operation == park_at:
            open(marker, "w").close()
            time.sleep(600)
    faults.hooks = (park,)
if mode == "library":
    import surefetch
    surefetch.fetch(url, cache=cache, extract=True)
else:
    from surefetch._cli.main import main
    sys.exit(main(["fetch", url, "--cache-dir", cache, "--extract", target]))
"""


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/pkg.tar.gz": ARCHIVE}) as chaos:
        yield chaos


def _start(
    mode: str, url: str, cache: Path, target: Path, *, park_at: str = "-", marker: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env["SUREFETCH_NO_RETRY_DELAY"] = "1"
    args = [park_at, str(marker), mode, url, str(cache), str(target)]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(process: subprocess.Popen[bytes], reached: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    try:
        while not reached():
            if process.poll() is not None:
                raise AssertionError(f"the child ended first: {process.stderr.read()!r}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise AssertionError("the kill point was not reached")
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _partial_size(cache: Path) -> int:
    sizes = [p.stat().st_size for p in (cache / "tmp" / "partial").glob("*.part")]
    return max(sizes, default=0)


def _grown_to(cache: Path, size: int) -> Callable[[], bool]:
    """Whether the partial download in ``cache`` holds at least ``size`` bytes."""
    return lambda: _partial_size(cache) >= size


def _check_rerun(mode: str, url: str, cache: Path, target: Path, marker: Path) -> None:
    rerun = _start(mode, url, cache, target, marker=marker)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    if mode == "library":
        trees = list((cache / "archives-v1").glob("*/*/tree"))
        assert len(trees) == 1
        tree = trees[0]
    else:
        tree = target
    found = {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert found == FILES
    assert Cache(cache).verify().sound
    Cache(cache).prune(older_than=0)
    staging = [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}")]
    assert staging == []
    leftovers = [p for p in (cache / "tmp").rglob("*") if p.is_file() or p.is_dir()]
    assert [p for p in leftovers if p.name != "partial"] == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cli", "library"])
def test_killed_at_thirty_points_every_rerun_succeeds(
    mode: str, server: ChaosServer, tmp_path: Path
) -> None:
    url = server.url("/pkg.tar.gz")
    points = [("byte", b) for b in BYTE_POINTS] + [("hook", h) for h in HOOK_POINTS]
    points += [("rewind", b) for b in REWIND_POINTS]
    assert len(points) == 30
    for number, (kind, where) in enumerate(points):
        cache, target = tmp_path / f"cache-{number}", tmp_path / f"out-{number}" / "tree"
        target.parent.mkdir()
        marker = tmp_path / f"parked-{number}"
        server.clear_scripts()
        if kind == "byte":
            server.script("/pkg.tar.gz", [Fault.stall(600, after=int(where))])
            child = _start(mode, url, cache, target, marker=marker)
            _kill_when(child, _grown_to(cache, int(where)))
        elif kind == "hook":
            child = _start(mode, url, cache, target, park_at=str(where), marker=marker)
            _kill_when(child, marker.exists)
        else:
            # A first run leaves an eighth of the archive; the second meets a
            # server that ignores Range, so its stream rewinds and the
            # extraction restarts, and it is killed in the middle of that
            # restart: past the eighth, only the restarted stream can be.
            eighth = len(ARCHIVE) // 8
            server.script("/pkg.tar.gz", [Fault.stall(600, after=eighth)])
            first = _start(mode, url, cache, target, marker=marker)
            _kill_when(first, _grown_to(cache, eighth))
            server.clear_scripts()
            server.ranges = False
            server.script("/pkg.tar.gz", [Fault.stall(600, after=int(where))])
            second = _start(mode, url, cache, target, marker=marker)
            _kill_when(second, _grown_to(cache, int(where)))
        server.clear_scripts()
        server.ranges = True
        _check_rerun(mode, url, cache, target, marker)
