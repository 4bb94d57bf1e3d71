"""Download an archive and extract it while it streams, under one retry budget.

The download appends to a partial file; a worker thread extracts from that
file through a `GrowingFileReader`, so a reset mid-body is resumed with
Range underneath and the same decompressor and tar reader simply continue.
Zip needs its central directory, so it is extracted once the file is
complete.

When the download restarts from zero under a running extraction (a server
that ignores ``Range`` answers ``200``, a reply that does not continue the
partial file, a failed check after a resume without a validator), the bytes
that extraction consumed no longer exist: it is dropped and a new one starts
from byte 0 of the new bytes, once per restart, while the download goes on.

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
import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from surefetch._errors import DownloadError, ExtractError, RetriesExhausted, archive_failure
from surefetch._extract.archive import (
    ArchiveFormat,
    ExtractLimits,
    ExtractResult,
    GrowingFileReader,
    detect_format,
    extract_file,
    extract_stream,
)
from surefetch._extract.formats import HEAD_SIZE
from surefetch._fetch.mirrors import download_any
from surefetch._fetch.options import Options
from surefetch._fetch.request import Resolved
from surefetch._fetch.sync_file import download_any_sync
from surefetch._fetch.url_download import scrubbing
from surefetch._http.partial import PartialFile
from surefetch._http.session import Sessions
from surefetch._http.stats import DownloadStats
from surefetch._http.stdlib_pool import transport_is_stdlib
from surefetch._http.sync_attempt import Stop
from surefetch._log import logger
from surefetch._retry.loops import aretrying
from surefetch._url import ParsedURL

_DRAIN_CHUNK = 1 << 20


class _Readers:
    """What the download tells the extraction, with a fresh reader after each restart.

    The download (through its `PartialFile`) reports progress with `advance`
    and a restart from zero with `rewind`. A rewind ends the current
    `GrowingFileReader` (its reads raise `StreamRewoundError`) and starts a
    new one at byte 0, which the next extraction reads; a rewind before any
    byte was announced changes nothing. Only the download's side calls
    these (from the event loop or a worker thread), never two at once.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._announced = 0
        self.current = GrowingFileReader(path)
        self._made = [self.current]

    def advance(self, size: int) -> None:
        self._announced = size
        self.current.advance(size)

    def rewind(self) -> None:
        if self._announced == 0:
            return  # nobody can have read anything
        old = self.current
        # The new reader first: whoever sees the old one fail finds it.
        self.current = GrowingFileReader(self._path)
        self._made.append(self.current)
        self._announced = 0
        old.rewind()

    def finish(self) -> None:
        self.current.finish()

    def fail(self, error: BaseException) -> None:
        self.current.fail(error)

    def close(self) -> None:
        for reader in self._made:
            reader.finish()  # a reader nobody reads any more must not hold a waiting thread
            reader.close()


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
    checksummed: bool,
) -> ExtractResult:
    """Extract what the download writes, in a worker thread.

    ``checksummed``: the archive's sha256 is known, and the tree is used
    only once the download matched it.
    """
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
        checksummed=checksummed,
    )


class _Download:
    """The download of one pass: a task on the event loop (aiohttp), or a worker
    thread on the standard-library transport, which `Stop` ends.

    The thread keeps aiohttp (its import, ~0.15 s, and an event loop hop per
    chunk) off the path of a streaming extraction. A thread cannot be
    cancelled: `stop` asks it to stop and waits until it has, so that nothing
    else touches the partial file while it still writes.
    """

    def __init__(
        self, future: asyncio.Future[tuple[ParsedURL, PartialFile, str]], stop: Stop | None
    ) -> None:
        self.future = future
        self._stop = stop

    @classmethod
    def start(
        cls,
        resolved: Resolved,
        *,
        sessions: Sessions,
        options: Options,
        stats: DownloadStats,
        readers: _Readers,
    ) -> _Download:
        if transport_is_stdlib(url.url for url in resolved.urls):
            stop = Stop()
            progress = options.progress
            if progress is not None:
                # Reported on the loop, as the aiohttp download does: a
                # progress display need not be thread-safe.
                loop = asyncio.get_running_loop()

                def on_loop(done: int, total: int | None) -> None:
                    loop.call_soon_threadsafe(progress, done, total)

                options = dataclasses.replace(options, progress=on_loop)
            thread = asyncio.to_thread(
                download_any_sync,
                resolved,
                options=options,
                stats=stats,
                reader=readers,
                stop=stop,
                started=time.monotonic(),
            )
            return cls(asyncio.ensure_future(thread), stop)
        task = download_any(
            resolved, sessions=sessions, options=options, stats=stats, reader=readers
        )
        return cls(asyncio.ensure_future(task), None)

    def done(self) -> bool:
        return self.future.done()

    async def stop(self) -> None:
        """Stop the download if it still runs, and wait until it has ended."""
        future = self.future
        if future.done():
            return
        if self._stop is None:
            future.cancel()
        else:
            self._stop.set()
        cancelled = False
        while not future.done():
            try:
                await asyncio.wait({future})
            except asyncio.CancelledError:
                cancelled = True  # the thread is stopping: it must end before we do
        if not future.cancelled():
            future.exception()  # retrieved: the error that stopping caused is not news
        if cancelled:
            raise asyncio.CancelledError


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

    def new_dest() -> Path:
        dest = work / f"tree-{next(numbers)}"
        dest.mkdir()
        return dest

    try:
        async for attempt in aretrying(policy=policy, operation=f"fetch and extract {name}"):
            with attempt:
                return await _one_pass(
                    resolved,
                    name=name,
                    new_dest=new_dest,
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
    new_dest: Callable[[], Path],
    partial_path: Path,
    sessions: Sessions,
    options: Options,
    stats: DownloadStats,
    limits: ExtractLimits,
    strip_components: int,
) -> tuple[PartialFile, str, ExtractResult, Path]:
    """One download (with its own resumed retries) and one extraction, side by side.

    An extraction whose reader was rewound (the download restarted from
    zero) is replaced by a new one on the new reader, whether it failed or
    not: what it read may mix old bytes and new.
    """
    readers = _Readers(partial_path)

    def extract(reader: GrowingFileReader) -> tuple[asyncio.Future[ExtractResult], Path]:
        dest = new_dest()
        job = asyncio.ensure_future(
            asyncio.to_thread(
                _extract_job,
                reader,
                dest,
                name=name,
                partial_path=partial_path,
                limits=limits,
                strip_components=strip_components,
                checksummed=resolved.sha256 is not None,
            )
        )
        return job, dest

    reader = readers.current
    job, dest = extract(reader)
    download = _Download.start(
        resolved, sessions=sessions, options=options, stats=stats, readers=readers
    )
    download_settled = False
    try:
        while True:
            waiting: set[asyncio.Future[Any]] = {job} if download.done() else {job, download.future}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if job.done() and reader is not readers.current:
                logger.info("Extracting %s again from the start: its download restarted", name)
                await asyncio.gather(job, return_exceptions=True)
                reader = readers.current
                job, dest = extract(reader)
                continue
            if not download.done():
                # Extraction stopped first (an unsafe member, a broken
                # stream): no point in downloading the rest.
                await download.stop()
                failed = None if download.future.cancelled() else download.future.exception()
                if isinstance(failed, DownloadError):
                    # The download failed on its own meanwhile, and its
                    # failure is why the extraction stopped: a wrong sha256
                    # removes the partial file, and an extraction that had not
                    # opened it yet fails to find it.
                    if not job.cancelled():
                        job.exception()  # retrieved: it only follows from the download's
                    raise archive_failure(name, failed) from failed
                job.result()
                raise ExtractError(
                    f"Failed to extract archive {name!r}: it ended before the download"
                )
            if not download_settled:
                download_settled = True
                error = download.future.exception()
                if error is not None:
                    readers.fail(error)
                else:
                    readers.finish()
            if job.done():
                break
        failed = download.future.exception()
        if failed is not None:
            # The extraction stopped on the failed download and has nothing
            # to add: the error names the archive, then the download's chain.
            if isinstance(failed, DownloadError):
                if not job.cancelled():
                    job.exception()  # its error only repeats the download's: retrieved, dropped
                raise archive_failure(name, failed) from failed
            job.result()
            raise failed
        _, partial, digest = download.future.result()
        try:
            extracted = job.result()
        except ExtractError:
            # The bytes themselves are bad (a body truncated without any
            # transport error): the next attempt downloads them anew.
            partial.discard()
            raise
        return partial, digest, extracted, dest
    finally:
        readers.finish()
        if not job.done():
            await asyncio.gather(job, return_exceptions=True)
        await download.stop()
        readers.close()
