"""Fault injection for the filesystem layer: make the next N calls of an operation fail."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from surefetch._fs import faults as _seam


class FsFaults:
    """A running fault plan: ``raised`` failures so far, ``remaining`` still to come.

    Returned by `inject_fs_faults`; it is also the hook that the filesystem
    functions call before each attempt.

    Example:
        >>> import surefetch.testing
        >>> denied = PermissionError(13, "Denied")
        >>> with surefetch.testing.inject_fs_faults(operation="rename", error=denied) as faults:
        ...     pass  # no rename here, so nothing was raised
        >>> faults
        FsFaults(operation='rename', error=PermissionError(13, 'Denied'), raised=0, remaining=1)
    """

    def __init__(self, *, operation: str, error: OSError, times: int) -> None:
        self.operation = operation
        self.error = error
        self.raised = 0
        self.remaining = times
        self._lock = threading.Lock()

    def __call__(self, operation: str, path: str, other: str | None) -> None:
        if operation != self.operation:
            return
        with self._lock:
            if self.remaining <= 0:
                return
            self.remaining -= 1
            self.raised += 1
        raise self._make_error(path, other)

    def _make_error(self, path: str, other: str | None) -> OSError:
        # A fresh copy per failure, so that each attempt keeps its own
        # traceback, named like the error the operating system would raise.
        try:
            error = copy.copy(self.error)
        except Exception:
            return self.error
        if error.filename is None:
            error.filename = path
            if other is not None:
                error.filename2 = other
        return error

    def __repr__(self) -> str:
        return (
            f"FsFaults(operation={self.operation!r}, error={self.error!r}, "
            f"raised={self.raised}, remaining={self.remaining})"
        )


@contextmanager
def inject_fs_faults(*, operation: str, error: OSError, times: int = 1) -> Iterator[FsFaults]:
    """Make the next ``times`` attempts of a `surefetch.fs` operation fail with ``error``.

    ``operation`` is one of ``"rename"``, ``"replace"``, ``"persist_dir"``,
    ``"remove_tree"``, ``"write_atomic"`` and ``"write_new"`` (the async twins
    count as their sync names; the cache persists its entries with
    ``"persist_dir"``, after writing a new entry's ``entry.json`` with
    ``"write_new"``). Each
    failure raises a copy of ``error`` carrying the paths of the call, in
    place of the real system call, so the retries, events and final error are
    the real ones. Active in every thread until the block ends.

    A Windows error on any platform: ``e = PermissionError(13, "Access is
    denied"); e.winerror = 5``.

    Example:
        >>> import errno, pathlib, tempfile
        >>> import surefetch.fs, surefetch.testing
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a").write_text("x")
        >>> denied = PermissionError(errno.EACCES, "Access is denied")
        >>> with surefetch.testing.no_wait(), surefetch.testing.inject_fs_faults(
        ...     operation="rename", error=denied, times=2
        ... ) as faults:
        ...     surefetch.fs.rename(d / "a", d / "b")
        >>> faults.raised
        2
    """
    if operation not in _seam.OPERATIONS:
        raise ValueError(
            f"operation={operation!r} is not valid: expected one of {', '.join(_seam.OPERATIONS)}"
        )
    if not isinstance(error, OSError):
        raise TypeError(f"error must be an OSError, not {type(error).__name__}")
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise ValueError(f"times={times!r} is not valid: expected a whole number >= 0")
    plan = FsFaults(operation=operation, error=error, times=times)
    _seam.hooks = (*_seam.hooks, plan)
    try:
        yield plan
    finally:
        _seam.hooks = tuple(hook for hook in _seam.hooks if hook is not plan)


__all__ = ["FsFaults", "inject_fs_faults"]
