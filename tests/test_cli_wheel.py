"""`surefetch wheel` in real processes: output, errors, single flight, SIGKILL.

Builds run without isolation (the backends are installed here): no network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdists import backend_processes, make_sdist, wheel_builds
from surefetch.cache import Cache

BUCKET_DIR = "built-wheels-v1"
JSON_KEYS = {
    "wheel",
    "name",
    "version",
    "tags",
    "sdist_sha256",
    "wheel_sha256",
    "from_cache",
    "build_s",
    "elapsed_s",
}


def run(*args: str | Path, cache: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "surefetch", "wheel", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SUREFETCH_CACHE_DIR": str(cache)},
        **kwargs,  # type: ignore[arg-type]
    )


def start(*args: str | Path, cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "surefetch", "wheel", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SUREFETCH_CACHE_DIR": str(cache)},
        start_new_session=True,
    )


def entries(cache: Path) -> list[Path]:
    bucket = cache / BUCKET_DIR
    return sorted(bucket.glob("*/*")) if bucket.exists() else []


def test_build_then_the_light_hit_prints_the_same_path(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="flit", record=record)
    cache = tmp_path / "cache"
    cold = run(sdist, "--no-isolation", cache=cache)
    assert cold.returncode == 0, cold.stderr
    processes = backend_processes(record)
    warm = run(sdist, cache=cache)  # the hit: isolation or not, no backend needed
    assert warm.returncode == 0 and warm.stdout == cold.stdout
    assert Path(cold.stdout.strip()).is_file()
    assert backend_processes(record) == processes


def test_json_output_copy_rebuild_and_config_settings(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="hatchling", record=record)
    cache, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    first = run(sdist, "--no-isolation", "--json", "-o", out, cache=cache)
    assert first.returncode == 0, first.stderr
    record_json = json.loads(first.stdout)
    assert set(record_json) == JSON_KEYS and record_json["from_cache"] is False
    copied = Path(record_json["wheel"])
    assert copied.parent == out and copied.name.startswith("demo_hatchling-1.0-")
    hit = json.loads(run(sdist, "--json", cache=cache).stdout)
    assert hit["from_cache"] is True and hit["wheel_sha256"] == record_json["wheel_sha256"]

    rebuilt = json.loads(run(sdist, "--no-isolation", "--rebuild", "--json", cache=cache).stdout)
    assert rebuilt["from_cache"] is False
    tuned = run(sdist, "--no-isolation", "-C", "mode=fast", "-C", "mode=safe", cache=cache)
    assert tuned.returncode == 0, tuned.stderr
    assert tuned.stdout.strip() != hit["wheel"]
    assert wheel_builds(record)[-1] == "build_wheel {'mode': ['fast', 'safe']}"
    assert len(wheel_builds(record)) == 3


def test_a_failing_backend_exits_1_with_its_output(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, backend="setuptools", record=tmp_path / "record", mode="fail")
    cache = tmp_path / "cache"
    done = run(sdist, "--no-isolation", cache=cache)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"error: Failed to build demo_setuptools-1.0 from {sdist}"
    assert lines[1] == "  Caused by: The build backend exited with status 3"
    assert lines[2] == "  Last output:"
    assert lines[-2:] == [
        "    compiling the flux capacitor",
        "    fatal: the flux capacitor is missing",
    ]
    assert entries(cache) == []
    verbose = run(sdist, "--no-isolation", "-v", cache=cache)
    assert "  backend: compiling the flux capacitor" in verbose.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    done = run(sdist, "-C", "novalue", cache=tmp_path / "cache")
    assert done.returncode == 2 and "-C 'novalue' is not valid" in done.stderr
    missing = run(tmp_path / "absent.tar.gz", cache=tmp_path / "cache")
    assert missing.returncode == 2 and "expected a URL or an existing file" in missing.stderr


@pytest.mark.slow
def test_four_processes_build_one_sdist_once(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="setuptools", record=record)
    other = make_sdist(tmp_path, backend="flit", record=tmp_path / "other")
    cache = tmp_path / "cache"
    workers = [start(sdist, "--no-isolation", cache=cache) for _ in range(4)]
    workers.append(start(other, "--no-isolation", cache=cache))
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 5, outputs
    assert len({out for out, _ in outputs[:4]}) == 1
    assert len(wheel_builds(record)) == 1
    assert len(wheel_builds(tmp_path / "other")) == 1
    assert len(entries(cache)) == 2


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_sigkill_during_the_build_leaves_nothing_and_the_next_run_builds(tmp_path: Path) -> None:
    record = tmp_path / "record"
    hanging = make_sdist(tmp_path, backend="flit", record=record, mode="hang")
    cache = tmp_path / "cache"
    worker = start(hanging, "--no-isolation", cache=cache)
    try:
        _wait_for(Path(f"{record}.started"))
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # surefetch and its backend, at once
        worker.wait()
    assert entries(cache) == []
    dead = [p for p in (cache / "tmp").iterdir() if p.name.startswith(BUCKET_DIR)]
    assert dead  # the killed build's directory, out of every reader's sight
    assert Cache(cache).prune(older_than=0).removed >= 1
    assert not any(p.name.startswith(BUCKET_DIR) for p in (cache / "tmp").iterdir())

    # The same sdist, now buildable: the next run builds it (no stale lock, no partial entry).
    good = tmp_path / "good"
    good.mkdir()
    sdist = make_sdist(good, backend="flit", record=record)
    (tmp_path / "demo_flit-1.0.tar.gz").unlink()
    done = run(sdist, "--no-isolation", cache=cache)
    assert done.returncode == 0, done.stderr
    assert len(entries(cache)) == 1


_KILL_AT_PERSIST = """
import os, signal, sys
from surefetch._fs import faults
def kill(operation, path, other):
    if operation == "persist_dir" and "built-wheels" in (other or ""):
        os.kill(os.getpid(), signal.SIGKILL)
faults.hooks = (kill,)
from surefetch import wheels
wheels.build(sys.argv[1], isolation=False, cache=sys.argv[2])
"""


def test_sigkill_during_persist_leaves_no_entry_and_the_next_run_builds(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="flit", record=record)
    cache = tmp_path / "cache"
    killed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _KILL_AT_PERSIST, str(sdist), str(cache)],
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(wheel_builds(record)) == 1 and entries(cache) == []
    done = run(sdist, "--no-isolation", cache=cache)
    assert done.returncode == 0, done.stderr
    assert len(wheel_builds(record)) == 2 and len(entries(cache)) == 1
    assert Cache(cache).prune(older_than=0).removed >= 1  # the killed run's staging
    assert Cache(cache).verify().sound
