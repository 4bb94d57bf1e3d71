"""The per-key lock: an OS lock that filelock's honours both ways, and that dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from surefetch._cache.lock import OSLock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the fcntl lock is the POSIX one")

# A holder in another process: takes the lock with the library named in argv[2],
# says so, and keeps it until stdin closes (or it is killed).
HOLDER = """
import sys
path, how = sys.argv[1], sys.argv[2]
if how == "filelock":
    from filelock import FileLock
    lock = FileLock(path, thread_local=False)
    lock.acquire(timeout=10)
else:
    from surefetch._cache.lock import OSLock
    lock = OSLock(path)
    assert lock.acquire(timeout=10)
print("held", flush=True)
sys.stdin.read()
lock.release()
print("released", flush=True)
"""


def _holder(path: Path, how: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def _let_go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    assert process.stdout.readline().strip() == "released"
    assert process.wait(timeout=30) == 0


def test_a_lock_held_by_filelock_in_another_process_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "key.lock"
    holder = _holder(path, "filelock")
    lock = OSLock(str(path))
    try:
        assert not lock.try_acquire()
        assert not lock.acquire(timeout=0.1)
    finally:
        _let_go(holder)
    assert lock.try_acquire()
    lock.release()


def test_filelock_in_another_process_respects_a_lock_held_here(tmp_path: Path) -> None:
    # An older surefetch (filelock) and this one can share a cache.
    path = tmp_path / "key.lock"
    lock = OSLock(str(path))
    assert lock.try_acquire()
    probe = (
        "import sys; from filelock import FileLock, Timeout; lock = FileLock(sys.argv[1]);\n"
        "try:\n    lock.acquire(timeout=0); print('taken')\nexcept Timeout:\n    print('busy')"
    )
    try:
        busy = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
        )
        assert busy.stdout.strip() == "busy"
    finally:
        lock.release()
    free = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    assert free.stdout.strip() == "taken"


def test_two_holders_in_one_process_conflict(tmp_path: Path) -> None:
    first, second = OSLock(str(tmp_path / "k.lock")), OSLock(str(tmp_path / "k.lock"))
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


def test_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    path = tmp_path / "key.lock"
    holder = _holder(path, "surefetch")
    lock = OSLock(str(path))
    assert not lock.try_acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.close()
    holder.stdout.close()
    assert lock.acquire(timeout=10)
    lock.release()
    assert path.exists()  # lock files stay: see surefetch._cache.lock


def test_a_lock_that_cannot_be_opened_is_a_clear_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        OSLock(str(tmp_path / "no" / "such" / "dir" / "k.lock")).try_acquire()
    assert caught.value.filename == str(tmp_path / "no" / "such" / "dir" / "k.lock")
