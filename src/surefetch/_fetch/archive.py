"""Fetch an archive and extract it while it streams, into the archives bucket.

The download appends to a partial file; a worker thread extracts from that
file through a `GrowingFileReader`, so a reset mid-body is resumed with
Range underneath and the same decompressor and tar reader simply continue.
Zip needs its central directory, so it is extracted once the file is
complete.

One outer retry loop covers download and extraction together and shares
the budget with the download's own loop: an extraction that fails because
the stream ended early (a body truncated without any transport error) is
retried with a fresh download, and a 3-retry policy still makes at most 4
requests in all. When the budget is spent the error reads "Failed to
extract archive X", caused by the download error, caused by "Request failed
after 3 retries in ...".
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from pathlib import Path

from surefetch._errors import ExtractError
from surefetch._extract._formats import HEAD_SIZE
from surefetch._extract.archive import (
    ArchiveFormat,
    ExtractLimits,
    ExtractResult,
    GrowingFileReader,
    StreamRewoundError,
    detect_format,
    extract_file,
    extract_stream,
)
from surefetch._fetch.core import (
    _download_any,
    _locked,
    _Options,
    _scrubbing,
    _Sessions,
    downloaded,
    offline_miss,
)
from surefetch._fetch.request import FetchRequest, FetchResult, Resolved, cached_result, resolve
from surefetch._http.download import DownloadStats, PartialFile
from surefetch._retry.loops import aretrying
from surefetch._url import filename_from_url

logger = logging.getLogger("surefetch")

_DRAIN_CHUNK = 1 << 20


class _Prepended:
    """A reader that returns ``head`` first, then what ``rest`` returns."""

    def __init__(self, head: bytes, rest: GrowingFileReader) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                return head
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._rest.read(size)


def _read_head(reader: GrowingFileReader) -> bytes:
    head = b""
    while len(head) < HEAD_SIZE:
        more = reader.read(HEAD_SIZE - len(head))
        if not more:
            break
        head += more
    return head


def _extract_job(
    reader: GrowingFileReader,
    dest: Path,
    *,
    name: str,
    partial_path: Path,
    limits: ExtractLimits,
    strip_components: int,
) -> ExtractResult:
    """Extract what the download writes, in a worker thread."""
    try:
        head = _read_head(reader)
    except EOFError as error:
        raise ExtractError(f"Failed to extract archive {name!r}") from error
    archive_format = detect_format(name=name, head=head)
    if archive_format is ArchiveFormat.ZIP:
        try:
            while reader.read(_DRAIN_CHUNK):
                pass  # zip needs the complete file: wait for the download to end
        except EOFError as error:
            raise ExtractError(f"Failed to extract archive {name!r}") from error
        return extract_file(
            partial_path,
            dest,
            format=archive_format,
            name=name,
            limits=limits,
            strip_components=strip_components,
        )
    return extract_stream(
        _Prepended(head, reader),
        dest,
        format=archive_format,
        name=name,
        limits=limits,
        strip_components=strip_components,
    )


def archive_key(key: str, strip_components: int) -> str:
    """The archives-bucket key: the download's key, and how many components were stripped."""
    return key if strip_components == 0 else f"{key}-strip{strip_components}"


async def fetch_archive(
    request: FetchRequest,
    *,
    sessions: _Sessions,
    options: _Options,
    limits: ExtractLimits,
    started: float,
) -> FetchResult:
    """Fetch ``request`` and extract it into the archives bucket; return the tree's path."""
    from surefetch._cache.entry import EntryMeta
    from surefetch._cache.store import BUCKET_ARCHIVES

    plain = resolve(request, bucket=BUCKET_ARCHIVES)
    resolved = Resolved(
        urls=plain.urls,
        sha256=plain.sha256,
        size=plain.size,
        bucket=plain.bucket,
        key=archive_key(plain.key, request.strip_components),
        redactor=plain.redactor,
    )
    cache = options.cache
    if not options.refresh:
        hit = cached_result(resolved, cache, started=started)
        if hit is not None:
            return hit
    if options.offline:
        raise offline_miss(resolved, cache)
    name = filename_from_url(resolved.primary.url)
    async with _locked(cache, resolved.bucket, resolved.key):
        if not options.refresh:
            hit = await asyncio.to_thread(cached_result, resolved, cache, started=started)
            if hit is not None:
                return hit
        stats = DownloadStats()
        with cache.temp_dir(resolved.bucket, resolved.key) as work:
            partial, digest, extracted, tree = await _download_and_extract(
                resolved,
                name=name,
                work=work,
                sessions=sessions,
                options=options,
                stats=stats,
                limits=limits,
                strip_components=request.strip_components,
            )
            meta = EntryMeta(
                url=resolved.primary.redacted,
                size=partial.size,
                sha256=digest,
                created=time.time(),
            )
            if options.refresh:
                await asyncio.to_thread(cache.remove, resolved.bucket, resolved.key)
            entry = await asyncio.to_thread(
                cache.commit_dir, resolved.bucket, resolved.key, tree, meta=meta
            )
        partial.discard()
    files = entry.meta.files if entry.meta.files is not None else extracted.files
    return downloaded(
        resolved,
        entry.path,
        digest,
        partial.size,
        stats=stats,
        started=started,
        extra={"files": files},
    )


async def fetch_archive_to(
    request: FetchRequest,
    *,
    target: Path,
    sessions: _Sessions,
    options: _Options,
    limits: ExtractLimits,
    started: float,
) -> FetchResult:
    """Fetch ``request`` and extract it into ``target``; the archive file is what is cached.

    The tree is extracted, while the archive streams, into a directory
    beside ``target`` (so that placing it is a rename) and the archive goes
    to the downloads bucket: doing it again needs no network, and no copy of
    a cached tree is made. ``target`` must not exist or be empty.
    """
    import shutil
    import tempfile

    from surefetch._cache.entry import EntryMeta

    resolved = resolve(request)
    cache = options.cache
    name = filename_from_url(resolved.primary.url)
    target = target.absolute()
    if target.is_symlink() or (target.exists() and (not target.is_dir() or any(target.iterdir()))):
        from surefetch._errors import ConfigError

        raise ConfigError(
            f"extract_to={str(target)!r} is not valid: expected a directory that does not "
            "exist or is empty"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:

        async def from_cache() -> FetchResult | None:
            hit = await asyncio.to_thread(cached_result, resolved, cache, started=started)
            if hit is None:
                return None
            (staging / "tree").mkdir()
            extracted = await asyncio.to_thread(
                extract_file,
                hit.path,
                staging / "tree",
                name=name,
                limits=limits,
                strip_components=request.strip_components,
            )
            return _placed(hit, staging / "tree", target, files=extracted.files)

        if not options.refresh:
            placed = await from_cache()
            if placed is not None:
                return placed
        if options.offline:
            raise offline_miss(resolved, cache)
        async with _locked(cache, resolved.bucket, resolved.key):
            if not options.refresh:
                placed = await from_cache()
                if placed is not None:
                    return placed
            stats = DownloadStats()
            partial, digest, extracted, tree = await _download_and_extract(
                resolved,
                name=name,
                work=staging,
                sessions=sessions,
                options=options,
                stats=stats,
                limits=limits,
                strip_components=request.strip_components,
            )
            meta = EntryMeta(
                url=resolved.primary.redacted, size=partial.size, sha256=digest, created=time.time()
            )
            if options.refresh:
                await asyncio.to_thread(cache.remove, resolved.bucket, resolved.key)
            entry = await asyncio.to_thread(
                cache.commit_file,
                resolved.bucket,
                resolved.key,
                partial.path,
                filename=name,
                meta=meta,
            )
            partial.sidecar.unlink(missing_ok=True)
        result = downloaded(
            resolved, entry.path, digest, partial.size, stats=stats, started=started
        )
        return _placed(result, tree, target, files=extracted.files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _placed(result: FetchResult, tree: Path, target: Path, *, files: int) -> FetchResult:
    """``result`` once ``tree`` is renamed to ``target``: the path is the tree's, the
    archive's cache entry goes to ``cache_path``."""
    import dataclasses

    if target.is_dir():
        target.rmdir()  # empty, as the caller checked; refuses if something appeared since
    os.rename(tree, target)
    extra = {**result.extra, "files": files, "cache_path": str(result.path)}
    return dataclasses.replace(result, path=target, extra=extra)


async def _download_and_extract(
    resolved: Resolved,
    *,
    name: str,
    work: Path,
    sessions: _Sessions,
    options: _Options,
    stats: DownloadStats,
    limits: ExtractLimits,
    strip_components: int,
) -> tuple[PartialFile, str, ExtractResult, Path]:
    """Download and extract together, retrying both under one budget."""
    partial_path = options.cache.partial_path(resolved.bucket, resolved.key)
    policy = _scrubbing(options.policy, resolved.redactor)
    numbers = itertools.count(1)
    async for attempt in aretrying(policy=policy, operation=f"fetch and extract {name}"):
        with attempt:
            dest = work / f"tree-{next(numbers)}"
            dest.mkdir()
            return await _one_pass(
                resolved,
                name=name,
                dest=dest,
                partial_path=partial_path,
                sessions=sessions,
                options=options,
                stats=stats,
                limits=limits,
                strip_components=strip_components,
            )
    raise AssertionError("unreachable: aretrying either returns or raises")


async def _one_pass(
    resolved: Resolved,
    *,
    name: str,
    dest: Path,
    partial_path: Path,
    sessions: _Sessions,
    options: _Options,
    stats: DownloadStats,
    limits: ExtractLimits,
    strip_components: int,
) -> tuple[PartialFile, str, ExtractResult, Path]:
    """One download (with its own resumed retries) and one extraction, side by side."""
    reader = GrowingFileReader(partial_path)
    job = asyncio.ensure_future(
        asyncio.to_thread(
            _extract_job,
            reader,
            dest,
            name=name,
            partial_path=partial_path,
            limits=limits,
            strip_components=strip_components,
        )
    )
    download = asyncio.ensure_future(
        _download_any(resolved, sessions=sessions, options=options, stats=stats, reader=reader)
    )
    try:
        await asyncio.wait({job, download}, return_when=asyncio.FIRST_COMPLETED)
        if job.done() and not download.done():
            # Extraction stopped first (an unsafe member, a restarted
            # stream): no point in downloading the rest.
            download.cancel()
            await asyncio.gather(download, return_exceptions=True)
            job.result()
            raise ExtractError(f"Failed to extract archive {name!r}: it ended before the download")
        try:
            _, partial, digest = await download
        except BaseException as error:
            reader.fail(error)
            # The extraction error reads better ("Failed to extract archive
            # ...") and its chain holds the download error.
            await job
            raise
        reader.finish()
        try:
            extracted = await job
        except ExtractError as error:
            if not isinstance(error.__cause__, StreamRewoundError):
                # The bytes themselves are bad (a body truncated without any
                # transport error): the next attempt downloads them anew.
                partial.discard()
            raise
        return partial, digest, extracted, dest
    finally:
        reader.finish()
        if not job.done():
            await asyncio.gather(job, return_exceptions=True)
        reader.close()
