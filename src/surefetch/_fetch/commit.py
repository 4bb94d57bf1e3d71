"""The last steps of a download, for both transports: commit, revalidate, or keep uncached.

Blocking code: the aiohttp path calls these in a worker thread
(`surefetch._fetch.entry_store`), the standard-library path directly
(`surefetch._fetch.sync_file`). Each runs under the key's lock.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from surefetch._cache import freshness
from surefetch._cache.entry import Entry, EntryMeta
from surefetch._cache.layout import bucket_dir_name
from surefetch._fetch.options import Options
from surefetch._fetch.request import FetchResult, Resolved, must_replace
from surefetch._fetch.url_download import Revalidation
from surefetch._http.partial import PartialFile
from surefetch._http.stats import DownloadStats
from surefetch._log import logger as _logger


def commit_download(
    resolved: Resolved,
    options: Options,
    partial: PartialFile,
    digest: str,
    *,
    url: str,
    store: Callable[[EntryMeta], Entry],
    caching: Mapping[str, str] | None = None,
    seen: tuple[Entry | None] | None = None,
) -> Entry:
    """Commit the verified download with ``store(meta)``.

    An entry already there goes first when it must (a refresh, a stale
    one, or one that records another sha256): a commit keeps an entry it
    finds. ``caching`` is what the response said about caching, kept in the
    entry for its freshness. ``seen``: see `must_replace`.
    """
    cache = options.cache
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
    if must_replace(resolved, cache, refresh=options.refresh, seen=seen):
        cache.remove(resolved.bucket, resolved.key)
    entry = store(meta)
    _logger.info("Stored %s in the cache: %s", url, entry.path)
    return entry


def stale_entry(
    resolved: Resolved, options: Options, *, seen: tuple[Entry | None] | None = None
) -> Entry | None:
    """The stale URL-keyed entry that a download may only need to revalidate, if any.

    Called under the key's lock, when the lookup found no usable entry
    (``seen`` holds the entry it found, if it is at hand).
    """
    if resolved.sha256 is not None or options.refresh:
        return None
    if seen is not None:
        return seen[0]
    return options.cache.lookup(resolved.bucket, resolved.key)


def revalidation(stale: Entry | None) -> Revalidation | None:
    """What to ask the server about ``stale``: its URL and conditional headers.

    None without a stale entry, or without a validator: then only a full
    download can tell, and it replaces the entry.
    """
    if stale is None:
        return None
    asked = freshness.conditional_headers(dict(stale.meta.headers))
    return (stale.meta.url, asked) if asked else None


def revalidated(
    resolved: Resolved, options: Options, stale: Entry, stats: DownloadStats, *, started: float
) -> FetchResult:
    """The hit of ``stale`` after the server answered ``304`` (its headers in ``stats``).

    Its metadata is refreshed (one rename of ``entry.json``; the payload
    stays as it is), so it is fresh again for as long as the server now
    says.
    """
    now = time.time()
    headers = freshness.refreshed(dict(stale.meta.headers), stats.caching)
    meta = dataclasses.replace(stale.meta, **_freshness_fields(headers, received=now))
    entry = options.cache.update_meta(resolved.bucket, resolved.key, meta)
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
        elapsed_s=time.monotonic() - started,
        extra={} if entry.meta.files is None else {"files": entry.meta.files},
        revalidated=True,
    )


def keep_uncached(resolved: Resolved, options: Options, source: Path, name: str) -> Path:
    """Give the caller ``source`` (a file or tree) that the server forbade storing.

    ``no-store``: no entry is made, and the stale one, if any, goes. The
    download moves to a directory of its own in the cache's temporary
    area, named like every temporary of this key, so `Cache.prune`
    removes it once it is an hour old and its key is not locked.
    """
    cache = options.cache
    cache.remove(resolved.bucket, resolved.key)
    cache.prepare()
    import tempfile  # rare (no-store), and tempfile brings shutil and random

    home = tempfile.mkdtemp(
        dir=cache.tmp_dir, prefix=f"{bucket_dir_name(resolved.bucket)}~{resolved.key}~"
    )
    target = Path(home, name)
    os.replace(source, target)
    _logger.warning(
        "Not cached: the server forbids storing %s (Cache-Control: no-store); "
        "it is at %s until the cache is pruned",
        resolved.primary.redacted,
        target,
    )
    return target


def _freshness_fields(headers: Mapping[str, str], *, received: float) -> dict[str, Any]:
    """The `EntryMeta` fields of freshness for a response with ``headers``, received now."""
    return {
        "headers": tuple((k, v) for k, v in headers.items() if k in freshness.KEPT),
        "checked": received,
        "fresh_until": freshness.fresh_until(headers, received=received),
        "immutable": freshness.is_immutable(headers),
    }
