"""A per-host retry budget, so that many parallel downloads back off together.

Each host has a token bucket. A first attempt is free; every retry takes a
token. While a host keeps failing, the bucket empties and retries to it are
spaced out to the refill rate, whatever the number of downloads waiting on
it: an outage costs the server a trickle, not a storm. The bookkeeping is
pure (the clock is passed in); only `HostRetryBudget.acquire` and its synchronous twin sleep.
"""

from __future__ import annotations

import threading
import time


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class HostRetryBudget:
    """Token buckets of retries, one per host.

    ``capacity`` retries may go out at once to one host (default 20, enough
    for a burst of ordinary flakiness across a `fetch_many`); after that,
    ``refill_per_second`` retries per second (default 2).

    Example:
        >>> budget = HostRetryBudget(capacity=1, refill_per_second=1.0)
        >>> budget.reserve("h", now=0.0)
        0.0
        >>> budget.reserve("h", now=0.0)
        1.0
    """

    def __init__(self, *, capacity: float = 20.0, refill_per_second: float = 2.0) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str, *, now: float) -> float:
        """Take one retry token for ``host``; return how long to wait before using it."""
        with self._lock:
            bucket = self._buckets.get(host)
            if bucket is None:
                bucket = self._buckets[host] = _Bucket(self.capacity, now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.refill_per_second)
            bucket.updated = now
            bucket.tokens -= 1.0
            if bucket.tokens >= 0.0:
                return 0.0
            return -bucket.tokens / self.refill_per_second

    async def acquire(self, host: str, *, skip_wait: bool = False) -> float:
        """Wait for a retry token for ``host``; returns the time waited (or skipped)."""
        import asyncio  # only async callers get here: the sync path stays without it

        wait = self.reserve(host, now=time.monotonic())
        if wait > 0 and not skip_wait:
            await asyncio.sleep(wait)
        return wait

    def acquire_sync(self, host: str, *, skip_wait: bool = False) -> float:
        """`acquire` for synchronous code: waits with ``time.sleep``."""
        wait = self.reserve(host, now=time.monotonic())
        if wait > 0 and not skip_wait:
            time.sleep(wait)
        return wait


default_host_budget = HostRetryBudget()
