"""One producer per cache key across processes: lookup, lock, lookup again, produce.

Every kind of entry that surefetch makes (a downloaded file, an extracted
tree, a tree placed in the caller's directory, and next a Python install or
a built wheel) follows the same steps, and only what is looked up and what
is produced differs. That difference is a `Store`; the steps are
`single_flight`, written once.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Store(Protocol[T_co]):
    """What `single_flight` needs to know about one key's entry."""

    def lock(self) -> AbstractContextManager[None]:
        """The key's inter-process lock (a blocking context manager)."""
        ...

    async def lookup(self) -> T_co | None:
        """The finished entry, or None when there is none yet."""
        ...

    async def produce(self) -> T_co:
        """Make the entry; called under the lock, after a last lookup found nothing."""
        ...

    def offline_error(self) -> Exception:
        """The error for a miss when the network may not be used."""
        ...


async def single_flight(store: Store[T], *, refresh: bool = False, offline: bool = False) -> T:
    """The entry of ``store``: found, or produced by this process while others wait.

    A hit needs no lock. On a miss the key's lock is taken (in a worker
    thread: the lock blocks) and the entry looked up again, since another
    process may have produced it meanwhile; only then is it produced. With
    ``refresh`` the lookups are skipped and the entry produced anew; with
    ``offline`` a miss raises ``store.offline_error()``.
    """
    if not refresh:
        hit = await store.lookup()
        if hit is not None:
            return hit
    if offline:
        raise store.offline_error()
    holder = store.lock()
    await asyncio.to_thread(holder.__enter__)
    try:
        if not refresh:
            hit = await store.lookup()
            if hit is not None:
                return hit
        return await store.produce()
    finally:
        await asyncio.to_thread(holder.__exit__, None, None, None)
