"""Putting a growing download on disk in the background, shared by both transports."""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# Every this many bytes written, a second thread asks the OS to put them on disk
# (fdatasync) while the download goes on, so that the cache's fsync at the end
# only waits for the last few MiB instead of the whole file.
_WRITEBACK_EVERY = 64 << 20


class Writeback:
    """Ask the OS to put a growing file on disk in the background, one fdatasync at a time.

    Only a speed-up: the cache still fsyncs the whole file when it stores it.
    The thread and the file descriptor are made once `_WRITEBACK_EVERY` bytes
    are written, so small downloads never start them. A platform that refuses
    (Windows cannot fsync a read-only handle) just turns it off, and so does
    ``needed=False``: a file the cache will not fsync (its ``lazy`` mode) is
    left to the kernel's own writeback.
    """

    def __init__(self, path: Path, size: int, *, needed: bool = True) -> None:
        self._path = path
        self._synced = size
        self._fd = -1
        self._pool: ThreadPoolExecutor | None = None
        self._busy = False
        self._off = not needed

    def written(self, size: int) -> None:
        """Called by the writer thread after each write; ``size`` is the file's size."""
        if self._off or self._busy or size - self._synced < _WRITEBACK_EVERY:
            return
        self._synced = size
        try:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor  # only for large files

                self._fd = os.open(self._path, os.O_RDONLY)
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="surefetch-writeback")
            self._busy = True
            self._pool.submit(self._sync)
        except (OSError, RuntimeError):  # no descriptor, or the interpreter is exiting
            self._busy = False
            self._off = True

    def _sync(self) -> None:
        try:
            getattr(os, "fdatasync", os.fsync)(self._fd)
        except OSError:
            self._off = True
        finally:
            self._busy = False

    def close(self) -> None:
        """Close the descriptor once the running fdatasync returns, without waiting for it."""
        self._off = True
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.submit(os.close, self._fd)
            except RuntimeError:
                os.close(self._fd)
            pool.shutdown(wait=False)
        elif self._fd >= 0:
            os.close(self._fd)
