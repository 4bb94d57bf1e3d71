"""One producer per cache key across processes: lookup, lock, lookup again, produce.

Every kind of entry that surefetch makes (a downloaded file, an extracted
tree, a tree placed in the caller's directory, and next a Python install or
a built wheel) follows the same steps, and only what is looked up and what
is produced differs. That difference is a `Store`; the steps are
`single_flight`, written once.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Store(Protocol[T_co]):
    """What `single_flight` needs to know about one key's entry."""

    def lock(self) -> AbstractAsyncContextManager[None]:
        """The key's lock: in-process and inter-process, waited for without a thread."""
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

    A hit needs no lock. On a miss the key's lock is taken and the entry
    looked up again, since another task or process may have produced it
    meanwhile; only then is it produced. With
    ``refresh`` the lookups are skipped and the entry produced anew; with
    ``offline`` a miss raises ``store.offline_error()``.
    """
    if not refresh:
        hit = await store.lookup()
        if hit is not None:
            return hit
    if offline:
        raise store.offline_error()
    async with store.lock():
        if not refresh:
            hit = await store.lookup()
            if hit is not None:
                return hit
        return await store.produce()


class SyncStore(Protocol[T_co]):
    """What `single_flight_sync` needs: `Store`, for code that blocks instead of awaiting."""

    def lock(self) -> AbstractContextManager[None]:
        """The key's lock, in-process and inter-process (the same lock file as `Store`'s)."""
        ...

    def lookup(self) -> T_co | None:
        """The finished entry, or None when there is none yet."""
        ...

    def produce(self) -> T_co:
        """Make the entry; called under the lock, after a last lookup found nothing."""
        ...

    def offline_error(self) -> Exception:
        """The error for a miss when the network may not be used."""
        ...


def single_flight_sync(
    store: SyncStore[T], *, refresh: bool = False, offline: bool = False, looked_up: bool = False
) -> T:
    """`single_flight` for synchronous code: the same steps, the same per-key lock.

    ``looked_up``: the caller has just looked the entry up and found none,
    so the first lookup is skipped (the one under the lock is still made).
    """
    if not refresh and not looked_up:
        hit = store.lookup()
        if hit is not None:
            return hit
    if offline:
        raise store.offline_error()
    with store.lock():
        if not refresh:
            hit = store.lookup()
            if hit is not None:
                return hit
        return store.produce()
