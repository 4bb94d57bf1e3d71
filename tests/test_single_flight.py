"""The single-flight skeleton every kind of entry uses, over a store made for the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager

import pytest

from surefetch._fetch.single_flight import single_flight, single_flight_sync


class Store:
    """Records what single_flight asks of it; ``entries`` is what a lookup finds, in turn."""

    def __init__(self, *entries: str | None) -> None:
        self.entries = list(entries)
        self.calls: list[str] = []

    def lock(self) -> AbstractAsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def held() -> AsyncIterator[None]:
            self.calls.append("lock")
            try:
                yield
            finally:
                self.calls.append("unlock")

        return held()

    async def lookup(self) -> str | None:
        self.calls.append("lookup")
        return self.entries.pop(0) if self.entries else None

    async def produce(self) -> str:
        self.calls.append("produce")
        return "made"

    def offline_error(self) -> Exception:
        return LookupError("offline miss")


def test_a_hit_takes_no_lock() -> None:
    store = Store("found")
    assert asyncio.run(single_flight(store)) == "found"
    assert store.calls == ["lookup"]


def test_a_miss_looks_again_under_the_lock_before_producing() -> None:
    store = Store(None, "made by another process")
    assert asyncio.run(single_flight(store)) == "made by another process"
    assert store.calls == ["lookup", "lock", "lookup", "unlock"]

    store = Store(None, None)
    assert asyncio.run(single_flight(store)) == "made"
    assert store.calls == ["lookup", "lock", "lookup", "produce", "unlock"]


def test_refresh_produces_without_looking() -> None:
    store = Store("stale")
    assert asyncio.run(single_flight(store, refresh=True)) == "made"
    assert store.calls == ["lock", "produce", "unlock"]


def test_offline_miss_raises_the_store_error_without_locking() -> None:
    store = Store(None)
    with pytest.raises(LookupError, match="offline miss"):
        asyncio.run(single_flight(store, offline=True))
    assert store.calls == ["lookup"]


def test_the_lock_is_released_when_producing_fails() -> None:
    class Failing(Store):
        async def produce(self) -> str:
            raise OSError("disk full")

    store = Failing(None, None)
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(single_flight(store))
    assert store.calls[-1] == "unlock"


class SyncStore:
    """`Store` for `single_flight_sync`."""

    def __init__(self, *entries: str | None) -> None:
        self.entries = list(entries)
        self.calls: list[str] = []

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.calls.append("lock")
        try:
            yield
        finally:
            self.calls.append("unlock")

    def lookup(self) -> str | None:
        self.calls.append("lookup")
        return self.entries.pop(0) if self.entries else None

    def produce(self) -> str:
        self.calls.append("produce")
        return "made"

    def offline_error(self) -> Exception:
        return LookupError("offline miss")


def test_the_sync_steps_are_the_same() -> None:
    store = SyncStore(None, None)
    assert single_flight_sync(store) == "made"
    assert store.calls == ["lookup", "lock", "lookup", "produce", "unlock"]


def test_a_caller_that_just_looked_up_skips_only_the_lookup_before_the_lock() -> None:
    store = SyncStore("made by another process")
    assert single_flight_sync(store, looked_up=True) == "made by another process"
    assert store.calls == ["lock", "lookup", "unlock"]
