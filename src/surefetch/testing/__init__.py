"""Tools for testing code that uses surefetch against real faults.

`ChaosServer` is a real HTTP server on loopback that injects scripted
faults (`Fault`) per request: resets, truncated bodies, stalls, any status,
Retry-After, dropped connections. `inject_fs_faults` makes the next calls
of a filesystem operation fail with a chosen OSError. `no_wait` makes every retry wait zero while
keeping counts and events (the same as ``SUREFETCH_NO_RETRY_DELAY=1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from surefetch._retry.budget import enter_no_wait, exit_no_wait
from surefetch.testing._chaos import ChaosServer, Fault, FaultKind, RequestRecord
from surefetch.testing._fs_faults import FsFaults, inject_fs_faults

__all__ = [
    "ChaosServer",
    "Fault",
    "FaultKind",
    "FsFaults",
    "RequestRecord",
    "inject_fs_faults",
    "no_wait",
]


@contextmanager
def no_wait() -> Iterator[None]:
    """Skip every retry wait inside the block, in every thread.

    Retries, events and `RetriesExhausted` counts stay as they would be; the
    skipped waits still count towards deadlines and the reported time.

    Example:
        >>> import surefetch.testing
        >>> with surefetch.testing.no_wait():
        ...     pass
    """
    enter_no_wait()
    try:
        yield
    finally:
        exit_no_wait()
