"""What every store of a downloaded entry shares: its key's lock, its hit, its commit.

The three kinds of entry a fetch makes (a file, a tree in the cache, a tree
in the caller's directory) differ in what they download and store; the rest
of the `single_flight` protocol, and the last steps of a commit, live here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surefetch._cache import freshness
from surefetch._cache.entry import Entry, EntryMeta
from surefetch._cache.layout import bucket_dir_name
from surefetch._fetch.disk_full import dropping_partial_when_full
from surefetch._fetch.options import Options
from surefetch._fetch.request import (
    FetchResult,
    Resolved,
    cached_result,
    must_replace,
    offline_miss,
)
from surefetch._http.partial import PartialFile
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats

_logger = logging.getLogger("surefetch")


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
        """The stale URL-keyed entry that a download may only need to revalidate, if any.

        Called under the key's lock, when the lookup found no usable entry.
        """
        if self.resolved.sha256 is not None or self.options.refresh:
            return None
        return self.options.cache.lookup(self.resolved.bucket, self.resolved.key)

    async def revalidated(self, stale: Entry, stats: DownloadStats) -> FetchResult:
        """The hit of ``stale`` after the server answered ``304`` (its headers in ``stats``).

        Its metadata is refreshed (one rename of ``entry.json``; the payload
        stays as it is), so it is fresh again for as long as the server now
        says.
        """
        resolved, cache = self.resolved, self.options.cache
        now = time.time()
        headers = freshness.refreshed(dict(stale.meta.headers), stats.caching)
        meta = dataclasses.replace(stale.meta, **_freshness_fields(headers, received=now))
        entry = await asyncio.to_thread(cache.update_meta, resolved.bucket, resolved.key, meta)
        _logger.info(
            "Revalidated %s: the server says the cached copy is current (304)",
            resolved.primary.redacted,
        )
        return FetchResult(
            path=entry.path,
            url=resolved.primary.redacted,
            sha256=entry.meta.sha256,
            size=entry.meta.size,
            from_cache=True,
            attempts=stats.attempts,
            retries=max(0, stats.attempts - len(stats.urls_tried)),
            elapsed_s=time.monotonic() - self.started,
            extra={} if entry.meta.files is None else {"files": entry.meta.files},
            revalidated=True,
        )

    async def keep_uncached(self, source: Path, name: str) -> Path:
        """Give the caller ``source`` (a file or tree) that the server forbade storing.

        ``no-store``: no entry is made, and the stale one, if any, goes. The
        download moves to a directory of its own in the cache's temporary
        area, named like every temporary of this key, so `Cache.prune`
        removes it once it is an hour old and its key is not locked.
        """
        resolved, cache = self.resolved, self.options.cache

        def move() -> Path:
            cache.remove(resolved.bucket, resolved.key)
            cache.prepare()
            home = tempfile.mkdtemp(
                dir=cache.tmp_dir, prefix=f"{bucket_dir_name(resolved.bucket)}~{resolved.key}~"
            )
            target = Path(home, name)
            os.replace(source, target)
            return target

        target = await asyncio.to_thread(move)
        _logger.warning(
            "Not cached: the server forbids storing %s (Cache-Control: no-store); "
            "it is at %s until the cache is pruned",
            resolved.primary.redacted,
            target,
        )
        return target

    async def commit(
        self,
        partial: PartialFile,
        digest: str,
        *,
        url: str,
        store: Callable[[EntryMeta], Entry],
        caching: Mapping[str, str] | None = None,
    ) -> Entry:
        """Commit the verified download with ``store(meta)``, in a worker thread.

        An entry already there goes first when it must (a refresh, a stale
        one, or one that records another sha256): a commit keeps an entry it
        finds. ``caching`` is what the response said about caching, kept in
        the entry for its freshness.
        """
        resolved, cache = self.resolved, self.options.cache
        now = time.time()
        meta = EntryMeta(
            url=url,
            size=partial.size,
            sha256=digest,
            created=now,
            content_key=resolved.key == resolved.sha256,
            **_freshness_fields(caching or {}, received=now),
        )
        if resolved.sha256 is not None:
            _logger.info("Verified sha256 %s (%d bytes) of %s", digest, partial.size, url)
        else:
            _logger.info("Computed sha256 %s (%d bytes) of %s", digest, partial.size, url)
        if must_replace(resolved, cache, refresh=self.options.refresh):
            await asyncio.to_thread(cache.remove, resolved.bucket, resolved.key)
        entry = await asyncio.to_thread(store, meta)
        _logger.info("Stored %s in the cache: %s", url, entry.path)
        return entry


def _freshness_fields(headers: Mapping[str, str], *, received: float) -> dict[str, Any]:
    """The `EntryMeta` fields of freshness for a response with ``headers``, received now."""
    return {
        "headers": tuple((k, v) for k, v in headers.items() if k in freshness.KEPT),
        "checked": received,
        "fresh_until": freshness.fresh_until(headers, received=received),
        "immutable": freshness.is_immutable(headers),
    }
