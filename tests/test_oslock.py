"""The per-key lock taken with flock directly (surefetch._cache.oslock), across real processes.

It must be the very lock filelock takes, so that a process locking one way
and a process locking the other exclude each other; a process that dies
releases it, even when a child it forked lives on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import surefetch
from surefetch._cache import oslock
from surefetch._cache.lock import hold, try_hold
from surefetch.cache import BUCKET_DOWNLOADS, Cache, LockTimeout

pytestmark = pytest.mark.skipif(not oslock.AVAILABLE, reason="flock is POSIX only")

SRC = str(Path(surefetch.__file__).resolve().parents[1])
KEY = "ab" * 16


def _holder(code: str, *args: str) -> subprocess.Popen[str]:
    """A fresh interpreter that runs ``code``, says "held" on stdout, then waits on stdin."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def _finish(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(60)


def test_a_lock_held_by_filelock_in_another_process_is_held_here(tmp_path: Path) -> None:
    path = str(tmp_path / "k.lock")
    other = _holder(
        """
        import sys
        from filelock import FileLock
        lock = FileLock(sys.argv[1], thread_local=False)
        lock.acquire()
        print("held", flush=True)
        sys.stdin.read()
        """,
        path,
    )
    try:
        assert oslock.try_lock(path) is None
        with try_hold(path) as held:
            assert not held
    finally:
        _finish(other)
    taken = oslock.try_lock(path)
    assert taken is not None
    oslock.unlock(taken)


def test_a_lock_held_here_is_held_for_filelock_in_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "k.lock")
    probe = (
        "import sys\nfrom filelock import FileLock, Timeout\n"
        "lock = FileLock(sys.argv[1], thread_local=False)\n"
        "try:\n    lock.acquire(timeout=0)\nexcept Timeout:\n    print('busy')\n"
        "else:\n    print('free')\n"
    )

    def filelock_sees() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, path], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    with hold(path, timeout=0, what="a test"):
        assert filelock_sees() == "busy"
    assert filelock_sees() == "free"


def test_a_child_forked_while_the_lock_was_held_does_not_keep_it_after_its_parent_dies(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path / "cache")
    parent = _holder(
        """
        import os, sys
        from surefetch.cache import Cache
        cache = Cache(sys.argv[1])
        with cache.lock("downloads", sys.argv[2]):
            child = os.fork()
            if child == 0:
                # The child lives on, holding (without this module) a copy of the lock's fd.
                sys.stdout.write("held\\n")
                sys.stdout.flush()
                sys.stdin.read()
                os._exit(0)
            sys.stdin.read()
        """,
        str(cache.root),
        KEY,
    )
    # Both processes hold the pipe; the parent is killed mid-hold, the child stays.
    try:
        with (
            pytest.raises(LockTimeout, match="Timed out"),
            cache.lock(BUCKET_DOWNLOADS, KEY, timeout=0),
        ):
            pass
        parent.send_signal(signal.SIGKILL)
        parent.wait(60)
        with cache.lock(BUCKET_DOWNLOADS, KEY, timeout=30):
            pass
    finally:
        _finish(parent)


def test_a_filesystem_without_flock_is_left_to_filelock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some network filesystems answer flock with ENOSYS; none does here, so this
    # module's flock is made to (filelock keeps the real one, and takes the lock).
    import errno
    import fcntl
    import types

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    fake = types.SimpleNamespace(
        flock=no_flock, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB, LOCK_UN=fcntl.LOCK_UN
    )
    monkeypatch.setattr(oslock, "fcntl", fake)
    path = str(tmp_path / "k.lock")
    with pytest.raises(oslock.Unsupported):
        oslock.try_lock(path)

    def locked_elsewhere() -> bool:
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    with hold(path, timeout=0, what="a test"):
        assert locked_elsewhere()  # the real lock, taken by filelock
    assert not locked_elsewhere()
