"""Per-key inter-process locks for the cache (filelock), with a logged, bounded wait.

The lock is an OS lock (``flock`` on POSIX) on a file under ``<root>/locks``,
so it is released when its holder dies, even by SIGKILL. Lock files are never
deleted: a process may have the file open and be about to lock it, and
deleting the name would let a third process lock a new file of the same name
while the second one holds the old, so two would hold "the" lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from surefetch._errors import LockTimeout

logger = logging.getLogger("surefetch")


@contextmanager
def hold(path: str, *, timeout: float, what: str) -> Iterator[None]:
    """Hold the lock at ``path``, waiting at most ``timeout`` seconds for it.

    Logs at INFO before waiting, so a user sees why nothing happens, and
    raises `LockTimeout` naming ``what`` when the time is up.
    """
    # Not thread-local: async callers enter and exit in different worker threads.
    lock = FileLock(path, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info(
            "Waiting for another process to finish %s (lock %s, timeout %gs)", what, path, timeout
        )
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise LockTimeout(what=what, path=path, timeout=timeout) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def try_hold(path: str) -> Iterator[bool]:
    """Hold the lock at ``path`` if it is free right now; yields whether it is held."""
    lock = FileLock(path, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
