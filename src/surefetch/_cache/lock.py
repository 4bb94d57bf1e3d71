"""Per-key inter-process locks for the cache, with a logged, bounded wait.

The lock is an OS lock on a file under ``<root>/locks``, so it is released
when its holder dies, even by SIGKILL: ``flock`` on POSIX, taken here
directly, and filelock's lock elsewhere (Windows). filelock takes ``flock``
the same way on POSIX, but importing it costs a command-line miss more than
20 ms, more than all the rest of what a miss imports to lock and publish;
a test holds the two to the same behaviour, in both directions.

Lock files are never deleted: a process may have the file open and be about
to lock it, and deleting the name would let a third process lock a new file
of the same name while the second one holds the old, so two would hold
"the" lock.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from surefetch._errors import LockTimeout

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from typing import Any

try:
    import fcntl
except ImportError:  # Windows: filelock's msvcrt lock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("surefetch")

# Polling the OS lock from the event loop: first soon, then at most this often.
_POLL_FIRST = 0.005
_POLL_MAX = 0.25
# Polling it from a blocked thread, as filelock does by default.
_POLL_SYNC = 0.05


class OSLock:
    """An exclusive OS lock on the file at ``path``, not re-entrant, taken without blocking.

    Two holders conflict whether they are in two processes or in two
    threads of one: each takes the lock through its own open file.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "key.lock")
        >>> first, second = OSLock(path), OSLock(path)
        >>> first.try_acquire(), second.try_acquire()
        (True, False)
        >>> first.release(); second.try_acquire()
        True
        >>> second.release()
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None
        self._fallback: Any = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; whether it was taken."""
        if fcntl is None:
            from filelock import FileLock, Timeout

            lock = FileLock(self._path, thread_local=False)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                return False
            self._fallback = lock
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the lock go (closing its file would, too)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.release()

    def acquire(self, *, timeout: float) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds; whether it was taken."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(_POLL_SYNC, left))
        return True


@contextmanager
def hold(path: str, *, timeout: float, what: str) -> Iterator[None]:
    """Hold the lock at ``path``, waiting at most ``timeout`` seconds for it.

    Logs at INFO before waiting, so a user sees why nothing happens, and
    raises `LockTimeout` naming ``what`` when the time is up.
    """
    # Not tied to a thread: async callers enter and exit in different worker threads.
    lock = OSLock(path)
    if not lock.try_acquire():
        logger.info(
            "Waiting for another process to finish %s (lock %s, timeout %gs)", what, path, timeout
        )
        if not lock.acquire(timeout=timeout):
            raise LockTimeout(what=what, path=path, timeout=timeout)
    try:
        yield
    finally:
        lock.release()


@contextmanager
def try_hold(path: str) -> Iterator[bool]:
    """Hold the lock at ``path`` if it is free right now; yields whether it is held."""
    lock = OSLock(path)
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
            lock = OSLock(path)
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
