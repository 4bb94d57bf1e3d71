"""Fetch a file into the downloads bucket: the plain kind of entry."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from surefetch._cache.entry import EntryMeta
from surefetch._fetch.disk_full import dropping_partial_when_full
from surefetch._fetch.mirrors import download_any
from surefetch._fetch.options import Options
from surefetch._fetch.request import (
    FetchRequest,
    FetchResult,
    Resolved,
    cached_result,
    downloaded,
    must_replace,
    offline_miss,
    resolve,
)
from surefetch._fetch.single_flight import single_flight
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats
from surefetch._url import filename_from_url


@dataclass(frozen=True, slots=True)
class _FileStore:
    resolved: Resolved
    sessions: Sessions
    options: Options
    started: float

    def lock(self) -> AbstractAsyncContextManager[None]:
        return self.options.cache.lock_async(self.resolved.bucket, self.resolved.key)

    async def lookup(self) -> FetchResult | None:
        return cached_result(self.resolved, self.options.cache, started=self.started)

    def offline_error(self) -> Exception:
        return offline_miss(self.resolved, self.options.cache)

    async def produce(self) -> FetchResult:
        partial_path = self.options.cache.partial_path(self.resolved.bucket, self.resolved.key)
        with dropping_partial_when_full(partial_path):
            return await self._produce()

    async def _produce(self) -> FetchResult:
        resolved, cache = self.resolved, self.options.cache
        stats = DownloadStats()
        url, partial, digest = await download_any(
            resolved, sessions=self.sessions, options=self.options, stats=stats
        )
        meta = EntryMeta(
            url=url.redacted,
            size=partial.size,
            sha256=digest,
            created=time.time(),
            content_key=resolved.sha256 is not None,
        )
        if must_replace(resolved, cache, refresh=self.options.refresh):
            await asyncio.to_thread(cache.remove, resolved.bucket, resolved.key)
        entry = await asyncio.to_thread(
            cache.commit_file,
            resolved.bucket,
            resolved.key,
            partial.path,
            filename=filename_from_url(url.url),
            meta=meta,
        )
        partial.sidecar.unlink(missing_ok=True)
        return downloaded(
            resolved, entry.path, digest, partial.size, stats=stats, started=self.started
        )


async def fetch_file(
    request: FetchRequest, *, sessions: Sessions, options: Options, started: float
) -> FetchResult:
    """Fetch ``request`` into the downloads bucket, or find it there."""
    store = _FileStore(resolve(request), sessions, options, started)
    return await single_flight(store, refresh=options.refresh, offline=options.offline)
