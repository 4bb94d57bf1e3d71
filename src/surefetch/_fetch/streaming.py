"""Download an archive and extract it while it streams, under one retry budget.

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
from pathlib import Path

from surefetch._errors import DownloadError, ExtractError, RetriesExhausted, archive_failure
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
from surefetch._extract.formats import HEAD_SIZE
from surefetch._fetch.mirrors import download_any, scrubbing
from surefetch._fetch.options import Options
from surefetch._fetch.request import Resolved
from surefetch._http.partial import PartialFile
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats
from surefetch._retry.loops import aretrying

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


async def download_and_extract(
    resolved: Resolved,
    *,
    name: str,
    work: Path,
    sessions: Sessions,
    options: Options,
    stats: DownloadStats,
    limits: ExtractLimits,
    strip_components: int,
) -> tuple[PartialFile, str, ExtractResult, Path]:
    """Download and extract together, retrying both under one budget."""
    partial_path = options.cache.partial_path(resolved.bucket, resolved.key)
    policy = scrubbing(options.policy, resolved.redactor)
    numbers = itertools.count(1)
    try:
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
    except RetriesExhausted as exhausted:
        # The top line names the operation; "Request failed after N retries"
        # follows it, then the last attempt's chain.
        raise archive_failure(name, exhausted) from exhausted
    raise AssertionError("unreachable: aretrying either returns or raises")


async def _one_pass(
    resolved: Resolved,
    *,
    name: str,
    dest: Path,
    partial_path: Path,
    sessions: Sessions,
    options: Options,
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
        download_any(resolved, sessions=sessions, options=options, stats=stats, reader=reader)
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
            # The extraction stops on the failed download and has nothing
            # to add: the error names the archive, then the download's chain.
            await asyncio.gather(job, return_exceptions=True)
            if isinstance(error, DownloadError):
                raise archive_failure(name, error) from error
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
