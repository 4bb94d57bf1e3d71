"""Single flight and crash recovery with real processes and real SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archives import Dir, File, make_archive
from surefetch._extract.archive import ArchiveFormat
from surefetch.testing import ChaosServer, Fault

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

DATA = random.Random(2).randbytes(4 << 20)
SHA = hashlib.sha256(DATA).hexdigest()


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SUREFETCH_CACHE_DIR"] = str(cache)
    env["SUREFETCH_NO_RETRY_DELAY"] = "1"
    env.pop("SUREFETCH_OFFLINE", None)
    return env


def test_sixteen_processes_fetching_one_url_make_one_request(tmp_path: Path) -> None:
    with ChaosServer(files={"/big.bin": DATA}) as server:
        # Whatever order the processes reach the key's lock in, the first
        # downloads and the rest find its entry: no timing is involved.
        command = [sys.executable, "-m", "surefetch", "fetch", server.url("/big.bin"), "--json"]
        processes = [
            subprocess.Popen(
                command, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(16)
        ]
        outputs = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0] * 16, [e for _, e in outputs]
        assert server.request_count("/big.bin") == 1
    records = [json.loads(out) for out, _ in outputs]
    assert len({r["path"] for r in records}) == 1
    assert sum(not r["from_cache"] for r in records) == 1
    assert Path(records[0]["path"]).read_bytes() == DATA


def _wait_for(condition: object, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_download_killed_with_sigkill_is_resumed_by_the_next_process(tmp_path: Path) -> None:
    half = len(DATA) // 2
    with ChaosServer(files={"/big.bin": DATA}) as server:
        server.script("/big.bin", [Fault.stall(120, after=half)])
        writer = subprocess.Popen(
            [sys.executable, "-m", "surefetch", "fetch", server.url("/big.bin"), "--sha256", SHA],
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
        )
        partial_dir = tmp_path / "tmp" / "partial"

        def half_written() -> bool:
            parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
            return bool(parts) and parts[0].stat().st_size >= half

        try:
            _wait_for(half_written)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        assert writer.returncode == -signal.SIGKILL
        assert not list(tmp_path.glob("downloads-v1/*/*"))

        server.reset_log()
        done = subprocess.run(
            [sys.executable, "-m", "surefetch", "fetch", server.url("/big.bin"), "--sha256", SHA],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert Path(done.stdout.strip()).read_bytes() == DATA
        first = server.requests[0]
        assert first.range_start == half
        assert server.bytes_sent("/big.bin") == len(DATA) - half

    verify = subprocess.run(
        [sys.executable, "-m", "surefetch", "cache", "verify", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


_FETCH = [sys.executable, "-m", "surefetch", "fetch"]


def _kill_mid_body(server: ChaosServer, path: str, args: list[str], cache: Path, at: int) -> None:
    """Start ``surefetch fetch URL ARGS``, SIGKILL it once ``at`` bytes are in its partial."""
    server.script(path, [Fault.stall(120, after=at)])
    writer = subprocess.Popen(
        [sys.executable, "-m", "surefetch", "fetch", server.url(path), *args],
        env=_env(cache),
        stdout=subprocess.DEVNULL,
    )
    partial_dir = cache / "tmp" / "partial"

    def written() -> bool:
        parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
        return bool(parts) and parts[0].stat().st_size >= at

    try:
        _wait_for(written)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    server.clear_scripts()
    server.reset_log()


def test_a_download_without_validators_killed_with_sigkill_is_resumed(tmp_path: Path) -> None:
    # A proxy that strips ETag and Last-Modified: only the sha256 can check a resume.
    half = len(DATA) // 2
    with ChaosServer(files={"/big.bin": DATA}, validators=False) as server:
        _kill_mid_body(server, "/big.bin", ["--sha256", SHA], tmp_path, half)
        done = subprocess.run(
            [*_FETCH, server.url("/big.bin"), "--sha256", SHA, "--json"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        assert Path(record["path"]).read_bytes() == DATA
        assert record["resumed_bytes"] >= half
        assert server.requests[0].range_start == record["resumed_bytes"]
        assert "if-range" not in server.requests[0].headers
        assert server.bytes_sent("/big.bin") == len(DATA) - record["resumed_bytes"]


_rng = random.Random(7)
TREE = {
    "pkg/": Dir(),
    "pkg/blob.bin": File(_rng.randbytes(3 << 20)),
    **{f"pkg/m{i}.py": File(_rng.randbytes(20_000)) for i in range(20)},
}
ARCHIVE = make_archive(TREE, ArchiveFormat.TAR_GZ)


def test_extract_after_a_killed_process_from_a_server_that_ignores_range(tmp_path: Path) -> None:
    with ChaosServer(files={"/pkg.tar.gz": ARCHIVE}) as server:
        first = tmp_path / "first"
        _kill_mid_body(
            server, "/pkg.tar.gz", ["--extract", str(first)], tmp_path, len(ARCHIVE) // 2
        )
        # Like `python -m http.server`: every request gets the whole file.
        server.script("/pkg.tar.gz", [Fault.ignore_range()] * 5)
        target = tmp_path / "out"
        done = subprocess.run(
            [*_FETCH, server.url("/pkg.tar.gz"), "--extract", str(target), "--json"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert server.requests[0].range_start is not None  # the partial was offered
        assert server.request_count() == 1
    files = {
        p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()
    }
    assert files == {name: member.data for name, member in TREE.items() if isinstance(member, File)}


@pytest.mark.parametrize("kill_after", [0, 1 << 20, 3 << 20])
def test_killed_writer_never_leaves_a_partial_entry(tmp_path: Path, kill_after: int) -> None:
    with ChaosServer(files={"/big.bin": DATA}) as server:
        server.script("/big.bin", [Fault.stall(120, after=kill_after)])
        writer = subprocess.Popen(
            [sys.executable, "-m", "surefetch", "fetch", server.url("/big.bin"), "-q"],
            env=_env(tmp_path),
        )
        _wait_for(lambda: server.request_count("/big.bin") == 1)
        partial_dir = tmp_path / "tmp" / "partial"
        if kill_after:
            _wait_for(
                lambda: any(p.stat().st_size >= kill_after for p in partial_dir.glob("*.part"))
            )
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert not list(tmp_path.glob("downloads-v1/*/*"))
        again = subprocess.run(
            [sys.executable, "-m", "surefetch", "fetch", server.url("/big.bin")],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert Path(again.stdout.strip()).read_bytes() == DATA


def test_fetch_many_interrupted_ends_at_once_and_the_next_one_resumes(tmp_path: Path) -> None:
    # Ctrl-C while one download of the batch stalls: the process ends now, not
    # when the stall does, and what was received is resumed by the next batch.
    half = len(DATA) // 2
    with ChaosServer(files={"/big.bin": DATA, "/small.bin": b"small" * 100}) as server:
        server.script("/big.bin", [Fault.stall(120, after=half)])
        urls = [server.url("/small.bin"), server.url("/big.bin")]
        code = "import sys, surefetch; surefetch.fetch_many(sys.argv[1:])"
        batch = subprocess.Popen(
            [sys.executable, "-c", code, *urls],
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        partial_dir = tmp_path / "tmp" / "partial"

        def half_written() -> bool:
            parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
            return any(part.stat().st_size >= half for part in parts)

        try:
            _wait_for(half_written)
            batch.send_signal(signal.SIGINT)
            _, stderr = batch.communicate(timeout=60)
        finally:
            batch.kill()
            batch.wait()
        assert batch.returncode != 0 and "KeyboardInterrupt" in stderr
        assert len(list(tmp_path.glob("downloads-v1/*/*"))) == 1  # the small one

        server.clear_scripts()
        server.reset_log()
        done = subprocess.run(
            [sys.executable, "-c", code, *urls],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert [(r.path, r.range_start) for r in server.requests] == [("/big.bin", half)]
