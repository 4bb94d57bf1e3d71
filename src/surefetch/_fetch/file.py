"""Fetch a file into the downloads bucket: the plain kind of entry."""

from __future__ import annotations

from dataclasses import dataclass

from surefetch._cache.freshness import forbids_storing
from surefetch._fetch.commit import revalidation
from surefetch._fetch.entry_store import EntryStore
from surefetch._fetch.mirrors import download_unless_current
from surefetch._fetch.options import Options
from surefetch._fetch.request import (
    FetchRequest,
    FetchResult,
    downloaded,
    resolve,
)
from surefetch._fetch.single_flight import single_flight
from surefetch._fetch.url_download import NotModified
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats
from surefetch._url import filename_from_url


@dataclass(frozen=True, slots=True)
class _FileStore(EntryStore):
    """A downloaded file in the downloads bucket."""

    async def download_and_store(self) -> FetchResult:
        resolved, cache = self.resolved, self.options.cache
        stats = DownloadStats()
        stale = self.stale_entry()
        found = await download_unless_current(
            resolved,
            sessions=self.sessions,
            options=self.options,
            stats=stats,
            revalidate=revalidation(stale),
        )
        if isinstance(found, NotModified):
            assert stale is not None
            return await self.revalidated(stale, stats)
        url, partial, digest = found
        if forbids_storing(stats.caching):
            path = await self.keep_uncached(partial.path, filename_from_url(url.url))
            partial.drop_sidecar()
            started = self.started
            return downloaded(resolved, path, digest, partial.size, stats=stats, started=started)
        entry = await self.commit(
            partial,
            digest,
            url=url.redacted,
            store=lambda meta: cache.commit_file(
                resolved.bucket,
                resolved.key,
                partial.path,
                filename=filename_from_url(url.url),
                meta=meta,
            ),
            caching=stats.caching,
        )
        partial.drop_sidecar()
        return downloaded(
            resolved, entry.path, digest, partial.size, stats=stats, started=self.started
        )


async def fetch_file(
    request: FetchRequest, *, sessions: Sessions, options: Options, started: float
) -> FetchResult:
    """Fetch ``request`` into the downloads bucket, or find it there."""
    store = _FileStore(resolve(request), sessions, options, started)
    return await single_flight(store, refresh=options.refresh, offline=options.offline)
