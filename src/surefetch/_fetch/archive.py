"""Fetch an archive and extract it while it streams: into the cache, or into a directory.

Two kinds of entry, one `single_flight` each:

* `fetch_archive` keeps the extracted tree in the archives bucket and
  returns its path;
* `fetch_archive_to` extracts into the caller's directory and keeps the
  archive file in the downloads bucket, so doing it again needs no network
  and no cached tree is ever copied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

from surefetch._cache.freshness import forbids_storing
from surefetch._cache.layout import BUCKET_ARCHIVES
from surefetch._cache.staging import Staging, reap_siblings
from surefetch._errors import ConfigError
from surefetch._extract.archive import DEFAULT_LIMITS, ExtractLimits, extract_file
from surefetch._fetch.entry_store import EntryStore
from surefetch._fetch.options import Options
from surefetch._fetch.request import (
    FetchRequest,
    FetchResult,
    cached_result,
    downloaded,
    resolve,
)
from surefetch._fetch.single_flight import single_flight
from surefetch._fetch.streaming import download_and_extract
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats
from surefetch._log import logger
from surefetch._url import filename_from_url


def archive_key(key: str, strip_components: int) -> str:
    """The archives-bucket key: the download's key, and how many components were stripped.

    Example:
        >>> archive_key("ab" * 16, 1)
        'abababababababababababababababab-strip1'
    """
    return key if strip_components == 0 else f"{key}-strip{strip_components}"


@dataclass(frozen=True, slots=True)
class _TreeStore(EntryStore):
    """An extracted tree in the archives bucket."""

    strip_components: int = 0
    limits: ExtractLimits = DEFAULT_LIMITS

    async def download_and_store(self) -> FetchResult:
        resolved, cache = self.resolved, self.options.cache
        stats = DownloadStats()
        with cache.temp_dir(resolved.bucket, resolved.key) as work:
            partial, digest, extracted, tree = await download_and_extract(
                resolved,
                name=filename_from_url(resolved.primary.url),
                work=work,
                sessions=self.sessions,
                options=self.options,
                stats=stats,
                limits=self.limits,
                strip_components=self.strip_components,
            )
            if forbids_storing(stats.caching):
                kept = await self.keep_uncached(tree, "tree")
                partial.discard()
                return downloaded(
                    resolved,
                    kept,
                    digest,
                    partial.size,
                    stats=stats,
                    started=self.started,
                    extra={"files": extracted.files},
                )
            entry = await self.commit(
                partial,
                digest,
                url=resolved.primary.redacted,
                store=lambda meta: cache.commit_dir(resolved.bucket, resolved.key, tree, meta=meta),
                caching=stats.caching,
            )
        partial.discard()
        files = entry.meta.files if entry.meta.files is not None else extracted.files
        logger.info(
            "Extracted %d files of %s into %s", files, resolved.primary.redacted, entry.path
        )
        return downloaded(
            resolved,
            entry.path,
            digest,
            partial.size,
            stats=stats,
            started=self.started,
            extra={"files": files},
        )


async def fetch_archive(
    request: FetchRequest,
    *,
    sessions: Sessions,
    options: Options,
    limits: ExtractLimits,
    started: float,
) -> FetchResult:
    """Fetch ``request`` and extract it into the archives bucket; return the tree's path."""
    plain = resolve(request, bucket=BUCKET_ARCHIVES)
    resolved = dataclasses.replace(plain, key=archive_key(plain.key, request.strip_components))
    store = _TreeStore(
        resolved,
        sessions,
        options,
        started,
        strip_components=request.strip_components,
        limits=limits,
    )
    return await single_flight(store, refresh=options.refresh, offline=options.offline)


@dataclass(frozen=True, slots=True)
class _PlacedTreeStore(EntryStore):
    """A tree placed at ``target``, from the archive file in the downloads bucket."""

    strip_components: int = 0
    limits: ExtractLimits = DEFAULT_LIMITS
    target: Path = Path()
    staging: Path = Path()

    @property
    def name(self) -> str:
        return filename_from_url(self.resolved.primary.url)

    async def lookup(self) -> FetchResult | None:
        hit = await asyncio.to_thread(
            cached_result,
            self.resolved,
            self.options.cache,
            started=self.started,
            max_age=self.options.max_age,
            offline=self.options.offline,
        )
        if hit is None:
            return None
        tree = self.staging / "tree"
        tree.mkdir()
        extracted = await asyncio.to_thread(
            extract_file,
            hit.path,
            tree,
            name=self.name,
            limits=self.limits,
            strip_components=self.strip_components,
        )
        # The extraction is part of the answer: elapsed_s counts it.
        hit = dataclasses.replace(hit, elapsed_s=time.monotonic() - self.started)
        return _placed(hit, tree, self.target, files=extracted.files)

    async def download_and_store(self) -> FetchResult:
        resolved, cache = self.resolved, self.options.cache
        stats = DownloadStats()
        partial, digest, extracted, tree = await download_and_extract(
            resolved,
            name=self.name,
            work=self.staging,
            sessions=self.sessions,
            options=self.options,
            stats=stats,
            limits=self.limits,
            strip_components=self.strip_components,
        )
        if forbids_storing(stats.caching):
            path = await self.keep_uncached(partial.path, self.name)
        else:
            entry = await self.commit(
                partial,
                digest,
                url=resolved.primary.redacted,
                store=lambda meta: cache.commit_file(
                    resolved.bucket, resolved.key, partial.path, filename=self.name, meta=meta
                ),
                caching=stats.caching,
            )
            path = entry.path
        partial.drop_sidecar()
        result = downloaded(resolved, path, digest, partial.size, stats=stats, started=self.started)
        return _placed(result, tree, self.target, files=extracted.files)


async def fetch_archive_to(
    request: FetchRequest,
    *,
    target: Path,
    sessions: Sessions,
    options: Options,
    limits: ExtractLimits,
    started: float,
) -> FetchResult:
    """Fetch ``request`` and extract it into ``target``; the archive file is what is cached.

    The tree is extracted, while the archive streams, into a directory
    beside ``target`` (so that placing it is a rename) and the archive goes
    to the downloads bucket: doing it again needs no network, and no copy of
    a cached tree is made. ``target`` must not exist or be empty.
    """
    resolved = resolve(request)
    target = target.absolute()
    if target.is_symlink() or (target.exists() and (not target.is_dir() or any(target.iterdir()))):
        raise ConfigError(
            f"extract_to={str(target)!r} is not valid: expected a directory that does not "
            "exist or is empty"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    cache = options.cache
    # What a killed run for this target left, this cache can tell dead from alive.
    await asyncio.to_thread(reap_siblings, cache, target)
    claimed = Staging(cache, target)
    staging = await asyncio.to_thread(claimed.open)
    try:
        store = _PlacedTreeStore(
            resolved,
            sessions,
            options,
            started,
            strip_components=request.strip_components,
            limits=limits,
            target=target,
            staging=staging,
        )
        return await single_flight(store, refresh=options.refresh, offline=options.offline)
    finally:
        # Shielded: a cancelled fetch still takes its staging directory away.
        await asyncio.shield(asyncio.to_thread(claimed.close))


def _placed(result: FetchResult, tree: Path, target: Path, *, files: int) -> FetchResult:
    """``result`` once ``tree`` is renamed to ``target``: the path is the tree's, the
    archive's cache entry goes to ``cache_path``."""
    if target.is_dir():
        target.rmdir()  # empty, as the caller checked; refuses if something appeared since
    os.rename(tree, target)
    logger.info("Extracted %d files of %s into %s", files, result.url, target)
    extra = {**result.extra, "files": files, "cache_path": str(result.path)}
    return dataclasses.replace(result, path=target, extra=extra)
