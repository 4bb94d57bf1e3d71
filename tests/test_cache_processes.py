"""The cache across real processes: single flight, prune under load, and SIGKILLed writers.

Workers run in fresh interpreters ("spawn"), so they share nothing with the
test but the cache directory, exactly like separate tools on one machine.
Every wait below is on an event another process signals, never on time.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from multiprocessing.synchronize import Barrier, Event, Semaphore
from pathlib import Path
from typing import Any

import pytest

import surefetch
from surefetch.cache import BUCKET_DOWNLOADS, Cache, Entry, EntryMeta

CTX = multiprocessing.get_context("spawn")
WAIT = 60.0  # seconds; only reached when something is broken
SRC = str(Path(surefetch.__file__).resolve().parents[1])


def payload(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest() * 512


def commit(cache: Cache, key: str, data: bytes) -> Entry:
    with cache.temp_dir(BUCKET_DOWNLOADS, key) as work:
        (work / "data.bin").write_bytes(data)
        meta = EntryMeta(
            url=f"https://example.org/{key}",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created=time.time(),
        )
        return cache.commit_file(
            BUCKET_DOWNLOADS, key, work / "data.bin", filename="data.bin", meta=meta
        )


class _SignalWaiting(logging.Handler):
    def __init__(self, waiting: Semaphore) -> None:
        super().__init__(logging.INFO)
        self.waiting = waiting

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Waiting for another process"):
            self.waiting.release()


# --- 8 processes, one key --------------------------------------------------------------


def racer(
    root: str,
    key: str,
    creations: str,
    start: Barrier,
    waiting: Semaphore,
    others: int,
    results: Any,
) -> None:
    logger = logging.getLogger("surefetch")
    logger.setLevel(logging.INFO)
    logger.addHandler(_SignalWaiting(waiting))
    cache = Cache(root)
    start.wait(WAIT)
    entry = cache.lookup(BUCKET_DOWNLOADS, key)
    if entry is None:
        with cache.lock(BUCKET_DOWNLOADS, key):
            entry = cache.lookup(BUCKET_DOWNLOADS, key)
            if entry is None:
                # Hold the lock until every other process is waiting for it, so
                # all of them really race for this one creation.
                for _ in range(others):
                    if not waiting.acquire(timeout=WAIT):
                        raise RuntimeError("the other processes never waited for the lock")
                with open(creations, "a") as log:
                    log.write(f"{os.getpid()}\n")
                entry = commit(cache, key, payload(key))
    results.put((str(entry.path), hashlib.sha256(entry.path.read_bytes()).hexdigest()))


def test_eight_processes_racing_for_one_key_create_it_once(tmp_path: Path) -> None:
    root, key, creations = str(tmp_path / "cache"), "ab" * 32, str(tmp_path / "creations")
    count = 8
    start, waiting, results = CTX.Barrier(count), CTX.Semaphore(0), CTX.Queue()
    processes = [
        CTX.Process(target=racer, args=(root, key, creations, start, waiting, count - 1, results))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=WAIT) for _ in processes]
    for process in processes:
        process.join(WAIT)
        assert process.exitcode == 0

    assert len(Path(creations).read_text().splitlines()) == 1
    assert len(set(outcomes)) == 1
    path, digest = outcomes[0]
    assert digest == hashlib.sha256(payload(key)).hexdigest()
    entry = Cache(root).lookup(BUCKET_DOWNLOADS, key)
    assert entry is not None
    assert str(entry.path) == path
    assert Cache(root).verify().sound


# --- 8 processes filling keys while prune runs ----------------------------------------


def filler(root: str, index: int, keys: int, go: Event, passes: Any, results: Any) -> None:
    cache = Cache(root)
    go.wait(WAIT)
    for number in range(keys):
        key = f"w{index}-k{number:03d}"
        data = payload(key)
        with cache.lock(BUCKET_DOWNLOADS, key):
            partial = cache.partial_path(BUCKET_DOWNLOADS, key)
            partial.write_bytes(data[: len(data) // 2])
            with cache.temp_dir(BUCKET_DOWNLOADS, key) as work:
                (work / "data.bin").write_bytes(data)
                if number == 0:
                    # Let two whole prune passes run over our live temporaries.
                    target = passes.value + 2
                    deadline = time.monotonic() + WAIT
                    while passes.value < target and time.monotonic() < deadline:
                        time.sleep(0.001)
                    if passes.value < target:
                        raise RuntimeError("prune did not run")
                meta = EntryMeta(
                    url=f"https://example.org/{key}",
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    created=time.time(),
                )
                cache.commit_file(
                    BUCKET_DOWNLOADS, key, work / "data.bin", filename="data.bin", meta=meta
                )
            partial.unlink()
    results.put(index)


def pruner(root: str, started: Event, stop: Event, passes: Any, removed: Any) -> None:
    cache = Cache(root)
    while True:
        report = cache.prune(older_than=0)
        with removed.get_lock():
            removed.value += report.removed
        with passes.get_lock():
            passes.value += 1
        started.set()
        if stop.is_set():
            return


def test_prune_while_eight_processes_fill_keys_loses_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    cache = Cache(root)
    # What a killed writer leaves: a temporary and a partial of a key nobody holds.
    orphan = Path(cache._new_temp(BUCKET_DOWNLOADS, "dead-key"))
    (orphan / "half.bin").write_bytes(b"x" * 100)
    cache.partial_path(BUCKET_DOWNLOADS, "dead-key").write_bytes(b"y" * 100)

    writers, keys = 8, 10
    go, started, stop = CTX.Event(), CTX.Event(), CTX.Event()
    passes, removed, results = CTX.Value("i", 0), CTX.Value("i", 0), CTX.Queue()
    prune_process = CTX.Process(target=pruner, args=(root, started, stop, passes, removed))
    fillers = [
        CTX.Process(target=filler, args=(root, index, keys, go, passes, results))
        for index in range(writers)
    ]
    prune_process.start()
    for process in fillers:
        process.start()
    assert started.wait(WAIT)
    go.set()
    done = sorted(results.get(timeout=WAIT) for _ in fillers)
    stop.set()
    for process in [*fillers, prune_process]:
        process.join(WAIT)
        assert process.exitcode == 0

    assert done == list(range(writers))
    for index in range(writers):
        for number in range(keys):
            key = f"w{index}-k{number:03d}"
            entry = cache.lookup(BUCKET_DOWNLOADS, key)
            assert entry is not None, key
            assert entry.path.read_bytes() == payload(key)
    report = cache.verify()
    assert report.sound
    assert report.checked == writers * keys
    assert not orphan.exists()
    assert removed.value >= 2
    assert os.listdir(cache.root / "tmp" / "partial") == []


# --- writers killed with SIGKILL --------------------------------------------------------

WRITER = r"""
import hashlib, sys, time
from surefetch._fs import faults as _seam
from surefetch.cache import Cache, EntryMeta

root, key, point = sys.argv[1:4]
data = hashlib.sha256(key.encode()).digest() * 512


def pause(name):
    if name == point:
        print(name, flush=True)
        sys.stdin.read()  # until the test kills us


def before_fs_call(operation, path, other):
    # "rename" moves the payload into the staging entry; "persist_dir" moves
    # the finished staging entry into its bucket.
    pause({"rename": "moving", "persist_dir": "persisting"}.get(operation))


_seam.hooks = (before_fs_call,)
cache = Cache(root)
with cache.lock("downloads", key):
    pause("locked")
    partial = cache.partial_path("downloads", key)
    with open(partial, "wb") as file:
        file.write(data[: len(data) // 2])
        file.flush()
        pause("partial")
    with cache.temp_dir("downloads", key) as work:
        (work / "data.bin").write_bytes(data)
        pause("staged")
        meta = EntryMeta(
            url="https://example.org/data.bin",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created=time.time(),
        )
        cache.commit_file("downloads", key, work / "data.bin", filename="data.bin", meta=meta)
    pause("committed")
print("finished", flush=True)
"""

POINTS = ["locked", "partial", "staged", "moving", "persisting", "committed"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")
@pytest.mark.parametrize("point", POINTS)
def test_a_writer_killed_at_any_point_leaves_a_sound_cache(tmp_path: Path, point: str) -> None:
    root, key = str(tmp_path / "cache"), "cd" * 32
    env = {**os.environ, "PYTHONPATH": SRC}
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, root, key, point],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == point
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(WAIT) == -signal.SIGKILL

    cache = Cache(root, lock_timeout=WAIT)
    assert cache.verify().sound
    found = cache.lookup(BUCKET_DOWNLOADS, key)
    assert (found is not None) == (point == "committed")

    # The next request for the key succeeds: the dead writer's lock is free.
    with cache.lock(BUCKET_DOWNLOADS, key, timeout=0):
        entry = cache.lookup(BUCKET_DOWNLOADS, key) or commit(cache, key, payload(key))
    assert entry.path.read_bytes() == payload(key)
    assert cache.verify().sound

    cache.prune(older_than=0)
    assert os.listdir(cache.root / "tmp") == ["partial"]
    assert os.listdir(cache.root / "tmp" / "partial") == []
