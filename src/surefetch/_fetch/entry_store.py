"""What every store of a downloaded entry shares: its key's lock, its hit, its commit.

The three kinds of entry a fetch makes (a file, a tree in the cache, a tree
in the caller's directory) differ in what they download and store; the rest
of the `single_flight` protocol, and the last steps of a commit, live here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from surefetch._cache.entry import Entry, EntryMeta
from surefetch._fetch.commit import (
    commit_download,
    keep_uncached,
    revalidated,
    stale_entry,
)
from surefetch._fetch.disk_full import dropping_partial_when_full
from surefetch._fetch.options import Options
from surefetch._fetch.request import FetchResult, Resolved, cached_result, offline_miss
from surefetch._http.partial import PartialFile
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats
from surefetch._log import INFO, logger as _logger


@dataclass(frozen=True, slots=True)
class EntryStore:
    """The `single_flight` store of one resolved request; subclasses say how to produce it."""

    resolved: Resolved
    sessions: Sessions
    options: Options
    started: float

    def lock(self) -> AbstractAsyncContextManager[None]:
        return self.options.cache.lock_async(self.resolved.bucket, self.resolved.key)

    async def lookup(self) -> FetchResult | None:
        return cached_result(
            self.resolved,
            self.options.cache,
            started=self.started,
            max_age=self.options.max_age,
            offline=self.options.offline,
        )

    def offline_error(self) -> Exception:
        return offline_miss(self.resolved, self.options.cache)

    async def produce(self) -> FetchResult:
        # A stale entry's lookup said already that it is revalidated.
        if _logger.isEnabledFor(INFO) and self.stale_entry() is None:
            _logger.info(
                "Cache miss: %s is not in %s; downloading it",
                self.resolved.primary.redacted,
                self.options.cache.root,
            )
        partial_path = self.options.cache.partial_path(self.resolved.bucket, self.resolved.key)
        with dropping_partial_when_full(partial_path):
            return await self.download_and_store()

    async def download_and_store(self) -> FetchResult:
        """Download the request and commit its entry (under the key's lock)."""
        raise NotImplementedError

    def stale_entry(self) -> Entry | None:
        """`surefetch._fetch.commit.stale_entry` of this store's request."""
        return stale_entry(self.resolved, self.options)

    async def revalidated(self, stale: Entry, stats: DownloadStats) -> FetchResult:
        """`surefetch._fetch.commit.revalidated`, in a worker thread."""
        return await asyncio.to_thread(
            revalidated, self.resolved, self.options, stale, stats, started=self.started
        )

    async def keep_uncached(self, source: Path, name: str) -> Path:
        """`surefetch._fetch.commit.keep_uncached`, in a worker thread."""
        return await asyncio.to_thread(keep_uncached, self.resolved, self.options, source, name)

    async def commit(
        self,
        partial: PartialFile,
        digest: str,
        *,
        url: str,
        store: Callable[[EntryMeta], Entry],
        caching: Mapping[str, str] | None = None,
    ) -> Entry:
        """`surefetch._fetch.commit.commit_download`, in a worker thread."""
        return await asyncio.to_thread(
            commit_download,
            self.resolved,
            self.options,
            partial,
            digest,
            url=url,
            store=store,
            caching=caching,
        )
