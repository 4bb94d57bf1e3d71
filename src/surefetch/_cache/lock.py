"""Per-key inter-process locks for the cache, with a logged, bounded wait.

The lock is an OS lock (``flock`` on POSIX, taken directly by
`surefetch._cache.oslock`; filelock elsewhere) on a file under ``<root>/locks``,
so it is released when its holder dies, even by SIGKILL. Lock files are never
deleted: a process may have the file open and be about to lock it, and
deleting the name would let a third process lock a new file of the same name
while the second one holds the old, so two would hold "the" lock.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from surefetch._cache import oslock
from surefetch._errors import LockTimeout
from surefetch._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio

    from filelock import FileLock


# Polling the OS lock while waiting for it: first soon, then at most this often.
_POLL_FIRST = 0.005
_POLL_MAX = 0.25


class _PathLock:
    """The OS lock on one lock file: `surefetch._cache.oslock` where it can, else filelock."""

    __slots__ = ("_file_lock", "_held", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._held: oslock.Held | None = None
        self._file_lock: FileLock | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; whether it is now held."""
        if self._file_lock is None:
            try:
                self._held = oslock.try_lock(self.path)
            except oslock.Unsupported:
                # Imported only here: filelock costs a command-line miss 20 ms to import.
                from filelock import FileLock

                # Not thread-local: async callers enter and exit in different worker threads.
                self._file_lock = FileLock(self.path, thread_local=False)
            else:
                return self._held is not None
        from filelock import Timeout

        try:
            self._file_lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            oslock.unlock(held)
        elif self._file_lock is not None:
            self._file_lock.release()


@contextmanager
def hold(path: str, *, timeout: float, what: str) -> Iterator[None]:
    """Hold the lock at ``path``, waiting at most ``timeout`` seconds for it.

    Logs at INFO before waiting, so a user sees why nothing happens, and
    raises `LockTimeout` naming ``what`` when the time is up. The wait polls
    the lock, soon at first and then at most every quarter second.
    """
    lock = _PathLock(path)
    if not lock.try_acquire():
        logger.info(
            "Waiting for another process to finish %s (lock %s, timeout %gs)", what, path, timeout
        )
        started = time.monotonic()
        delay = _POLL_FIRST
        while not lock.try_acquire():
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockTimeout(what=what, path=path, timeout=timeout) from None
            time.sleep(min(delay, timeout - waited))
            delay = min(delay * 2, _POLL_MAX)
    try:
        yield
    finally:
        lock.release()


@contextmanager
def try_hold(path: str) -> Iterator[bool]:
    """Hold the lock at ``path`` if it is free right now; yields whether it is held."""
    lock = _PathLock(path)
    if not lock.try_acquire():
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


class _LocalLocks:
    """The in-process locks of one event loop, one per lock path, kept while in use."""

    def __init__(self) -> None:
        self.locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def take(self, path: str) -> asyncio.Lock:
        import asyncio

        lock, users = self.locks.get(path, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self.locks[path] = (lock, users + 1)
        return lock

    def give_back(self, path: str) -> None:
        lock, users = self.locks[path]
        if users == 1:
            del self.locks[path]
        else:
            self.locks[path] = (lock, users - 1)


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LocalLocks] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def hold_async(path: str, *, timeout: float, what: str) -> AsyncIterator[None]:
    """`hold` for async code: waiting occupies no thread, and one task per process waits.

    Tasks of one event loop that want the same lock queue on an
    ``asyncio.Lock`` first, so that only one of them at a time contends for
    the OS lock; that one polls it without blocking (a few milliseconds at
    first, backing off), so a waiter never holds a worker thread that the
    lock's holder needs to finish. The wait, in-process and inter-process
    together, is bounded by ``timeout``.
    """
    import asyncio

    started = time.monotonic()
    locals_ = _per_loop.setdefault(asyncio.get_running_loop(), _LocalLocks())
    local = locals_.take(path)
    try:
        try:
            await asyncio.wait_for(local.acquire(), timeout=timeout)
        except asyncio.TimeoutError:
            raise LockTimeout(what=what, path=path, timeout=timeout) from None
        try:
            lock = _PathLock(path)
            delay = _POLL_FIRST
            while not lock.try_acquire():
                waited = time.monotonic() - started
                if delay == _POLL_FIRST:
                    logger.info(
                        "Waiting for another process to finish %s (lock %s, timeout %gs)",
                        what,
                        path,
                        timeout,
                    )
                if waited >= timeout:
                    raise LockTimeout(what=what, path=path, timeout=timeout) from None
                await asyncio.sleep(min(delay, timeout - waited))
                delay = min(delay * 2, _POLL_MAX)
            try:
                yield
            finally:
                lock.release()
        finally:
            local.release()
    finally:
        locals_.give_back(path)
