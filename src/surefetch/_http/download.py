"""Download one URL into a resumable partial file, hashing as the body streams.

A partial download is a file in the cache's temporary area plus a small JSON
sidecar holding what the server said about it (ETag, Last-Modified, total
size). After a transient failure the next attempt asks for the rest with
``Range`` + ``If-Range``; a ``200`` reply means the file changed or ranges are
not supported, and the partial restarts from zero. A partial left by a killed
process is picked up by the next one: its bytes are hashed once from disk and
the download continues if the validator still matches.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surefetch._errors import HTTPStatusError, TransientDownloadError
from surefetch._http.headers import parse_content_range, parse_retry_after
from surefetch._url import ParsedURL

if TYPE_CHECKING:
    import aiohttp

    from surefetch._extract.archive import GrowingFileReader

logger = logging.getLogger("surefetch")

CHUNK_SIZE = 1 << 20
# A body this small is written in the event loop, with no writer thread, and
# not prepared for a resume by another process: for the thousands of small
# files of a fetch_many, the per-file threads and files would cost more than
# the bytes themselves.
SMALL_BODY = 1 << 20
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Validator:
    """What identifies the bytes of a partial download on the server."""

    url: str
    etag: str | None
    last_modified: str | None
    total: int | None

    @property
    def if_range(self) -> str | None:
        """The If-Range value: a strong ETag, else Last-Modified (weak ETags may not be used)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


@dataclass(slots=True)
class DownloadStats:
    """What one fetch did, for ``--json`` and for tests."""

    attempts: int = 0
    resumed_bytes: int = 0
    restarts: int = 0
    bytes_received: int = 0
    urls_tried: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int, "int | None"], None]


class PartialFile:
    """The bytes of one download received so far, with their running sha256.

    Only touched under the cache key's lock, so one process at a time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sidecar = path.with_name(path.name + ".json")
        self.size = 0
        self.hasher = hashlib.sha256()
        self.validator: Validator | None = None
        self.reader: GrowingFileReader | None = None
        self._file: Any = None

    @classmethod
    def open(cls, path: Path, *, url: str) -> PartialFile:
        """Pick up what an earlier attempt or process left for ``url``, or start empty."""
        partial = cls(path)
        validator = partial._load_validator()
        if validator is None or validator.url != url or not path.exists():
            partial.restart()
            return partial
        partial.validator = validator
        with path.open("rb") as existing:
            while block := existing.read(_HASH_BLOCK):
                partial.hasher.update(block)
                partial.size += len(block)
        if validator.total is not None and partial.size > validator.total:
            partial.restart()
        return partial

    def _load_validator(self) -> Validator | None:
        try:
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
            return Validator(**data)
        except (OSError, ValueError, TypeError):
            return None

    @property
    def complete(self) -> bool:
        """Whether every byte the server announced is here (a finished download)."""
        total = self.validator.total if self.validator else None
        return total is not None and self.size == total

    def attach(self, reader: GrowingFileReader) -> None:
        """Let ``reader`` (a streaming extraction) follow the bytes as they are written."""
        self.reader = reader
        reader.advance(self.size)

    def restart(self) -> None:
        """Drop the bytes received so far."""
        if self.reader is not None:
            # Before truncating: a reader must never see new bytes at old offsets.
            self.reader.rewind()
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        self.sidecar.unlink(missing_ok=True)
        self.size = 0
        self.hasher = hashlib.sha256()
        self.validator = None

    def set_validator(self, validator: Validator) -> None:
        """Record what the server said, before any body byte is written.

        It goes to the sidecar file only for bodies large enough to be worth
        resuming in another process: for a small one, a restart costs less
        than the file that would allow resuming it.
        """
        self.validator = validator
        if validator.total is not None and validator.total <= SMALL_BODY:
            self.sidecar.unlink(missing_ok=True)
            return
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(asdict(validator)), encoding="utf-8")
        os.replace(tmp, self.sidecar)

    def append(self, chunk: bytes) -> None:
        """Write ``chunk`` at the end and hash it: the two never disagree."""
        if self._file is None:
            self._file = self.path.open("ab", buffering=0)
        view = memoryview(chunk)
        while view:  # a short write (a full disk, a signal) must not lose bytes
            written = self._file.write(view)
            view = view[written:]
        self.hasher.update(chunk)
        self.size += len(chunk)
        if self.reader is not None:
            self.reader.advance(self.size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Remove the partial file and its sidecar."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


async def download_attempt(
    session: aiohttp.ClientSession,
    url: ParsedURL,
    partial: PartialFile,
    *,
    authorization: str | None,
    stats: DownloadStats,
    progress: ProgressCallback | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Make one request for ``url`` and append its body to ``partial``.

    Raises `HTTPStatusError` for an error status, `TransientDownloadError`
    for a reply that does not continue the partial file, and whatever the
    transport raises when the connection fails.
    """
    headers: dict[str, str] = {"Accept-Encoding": "identity"}
    if authorization is not None:
        headers["Authorization"] = authorization
    if_range = partial.validator.if_range if partial.validator else None
    ranged = partial.size > 0 and if_range is not None
    if partial.size > 0 and not ranged:
        partial.restart()
    if ranged:
        assert if_range is not None
        headers["Range"] = f"bytes={partial.size}-"
        headers["If-Range"] = if_range
    async with session.get(url.url, headers=headers) as response:
        status = response.status
        if status == 416 and ranged:
            partial.restart()
            stats.restarts += 1
            raise TransientDownloadError(
                f"Server refused the range {headers['Range']} of {url.redacted}; restarting"
            )
        if status not in (200, 206):
            raise HTTPStatusError(
                url=url.redacted,
                status=status,
                reason=response.reason or "",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), now=time.time()),
            )
        if status == 206:
            _check_continuation(response.headers.get("Content-Range"), partial, url, stats)
            logger.info("Resuming %s from byte %d", url.redacted, partial.size)
            stats.resumed_bytes += partial.size
        else:
            if partial.size:
                logger.info("Restarting %s from zero: the server sent the whole file", url.redacted)
                stats.restarts += 1
                partial.restart()
            partial.set_validator(
                Validator(
                    url=url.url,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    total=response.content_length,
                )
            )
        total = partial.validator.total if partial.validator else None
        await _stream_body(response, partial, stats, total, progress, on_bytes)
        if total is not None and partial.size != total:
            raise TransientDownloadError(
                f"Body of {url.redacted} ended at byte {partial.size} of {total}"
            )


# Chunks handed to the writer thread and not yet on disk. With one, the writer
# idles while the event loop wakes up, takes its result and hands it the next
# chunk; with two it always has the next one queued. More buys nothing measurable.
_IN_FLIGHT = 2
# Every this many bytes written, a second thread asks the OS to put them on disk
# (fdatasync) while the download goes on, so that the cache's fsync at the end
# only waits for the last few MiB instead of the whole file.
_WRITEBACK_EVERY = 64 << 20


async def _stream_body(
    response: aiohttp.ClientResponse,
    partial: PartialFile,
    stats: DownloadStats,
    total: int | None,
    progress: ProgressCallback | None,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Append the body to ``partial`` as it arrives.

    The event loop receives 1 MiB chunks and hands them, in order, to one
    writer thread that writes and hashes them (both release the GIL), so the
    download uses two cores. Up to `_IN_FLIGHT` chunks wait for the writer,
    which bounds the memory. Every write carries its offset and the writer
    drops a chunk that does not continue the file (after a failed write), so
    the file never gets a gap. On any failure, every byte already received is
    written before the exception propagates, so the next attempt resumes after
    them.
    """
    if total is not None and total - partial.size <= SMALL_BODY:
        await _stream_small_body(response, partial, stats, total, progress, on_bytes)
        return
    loop = asyncio.get_running_loop()
    writer = _Writer(partial, on_bytes)
    pending: collections.deque[asyncio.Future[None]] = collections.deque()
    received = partial.size  # end offset of the bytes handed to the writer
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="surefetch-write") as pool:
            try:
                async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                    # Handed over first: whatever fails below, this chunk is
                    # written before the bytes _salvage takes after it.
                    pending.append(loop.run_in_executor(pool, writer.write, chunk, received))
                    received += len(chunk)
                    stats.bytes_received += len(chunk)
                    if len(pending) > _IN_FLIGHT:
                        # Shielded: cancelling a queued write would leave a gap.
                        await asyncio.shield(pending.popleft())
                        if progress is not None:
                            progress(partial.size, total)
            except Exception:
                await _drain(pending)
                rest = _salvage(response.content, received, total)
                if rest:
                    stats.bytes_received += len(rest)
                    await asyncio.shield(loop.run_in_executor(pool, writer.write, rest, received))
                raise
            finally:
                # If this wait is cancelled, leaving the with block still waits
                # (blocking) for the queued writes, before the file is closed.
                await _drain(pending)
    finally:
        partial.close()
        writer.writeback.close()
    if progress is not None:
        progress(partial.size, total)


async def _stream_small_body(
    response: aiohttp.ClientResponse,
    partial: PartialFile,
    stats: DownloadStats,
    total: int | None,
    progress: ProgressCallback | None,
    on_bytes: Callable[[int], None] | None,
) -> None:
    """`_stream_body` for a body of at most `SMALL_BODY`: written as it arrives, in the loop."""
    try:
        try:
            async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                partial.append(chunk)
                stats.bytes_received += len(chunk)
                if on_bytes is not None:
                    on_bytes(partial.size)
        except Exception:
            rest = _salvage(response.content, partial.size, total)
            if rest:
                stats.bytes_received += len(rest)
                partial.append(rest)
            raise
    finally:
        partial.close()
    if progress is not None:
        progress(partial.size, total)


async def _drain(pending: collections.deque[asyncio.Future[None]]) -> None:
    """Wait for every queued write, oldest first; then raise the first write error."""
    error: Exception | None = None
    while pending:
        try:
            await asyncio.shield(pending.popleft())
        except Exception as exc:
            error = error or exc
    if error is not None:
        raise error


class _Writer:
    """What the writer thread runs for each chunk: append it if it continues the file."""

    def __init__(self, partial: PartialFile, on_bytes: Callable[[int], None] | None) -> None:
        self.partial = partial
        self.on_bytes = on_bytes
        self.writeback = _Writeback(partial.path, partial.size)

    def write(self, chunk: bytes, offset: int) -> None:
        partial = self.partial
        if partial.size != offset:
            return  # an earlier write failed: never write after a gap
        partial.append(chunk)
        if self.on_bytes is not None:
            self.on_bytes(partial.size)
        self.writeback.written(partial.size)


class _Writeback:
    """Ask the OS to put a growing file on disk in the background, one fdatasync at a time.

    Only a speed-up: the cache still fsyncs the whole file when it stores it.
    The thread and the file descriptor are made once `_WRITEBACK_EVERY` bytes
    are written, so small downloads never start them. A platform that refuses
    (Windows cannot fsync a read-only handle) just turns it off.
    """

    def __init__(self, path: Path, size: int) -> None:
        self._path = path
        self._synced = size
        self._fd = -1
        self._pool: ThreadPoolExecutor | None = None
        self._busy = False
        self._off = False

    def written(self, size: int) -> None:
        """Called by the writer thread after each write; ``size`` is the file's size."""
        if self._off or self._busy or size - self._synced < _WRITEBACK_EVERY:
            return
        self._synced = size
        try:
            if self._pool is None:
                self._fd = os.open(self._path, os.O_RDONLY)
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="surefetch-writeback")
            self._busy = True
            self._pool.submit(self._sync)
        except (OSError, RuntimeError):  # no descriptor, or the interpreter is exiting
            self._busy = False
            self._off = True

    def _sync(self) -> None:
        try:
            getattr(os, "fdatasync", os.fsync)(self._fd)
        except OSError:
            self._off = True
        finally:
            self._busy = False

    def close(self) -> None:
        """Close the descriptor once the running fdatasync returns, without waiting for it."""
        self._off = True
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.submit(os.close, self._fd)
            except RuntimeError:
                os.close(self._fd)
            pool.shutdown(wait=False)
        elif self._fd >= 0:
            os.close(self._fd)


def _salvage(content: object, size: int, total: int | None) -> bytes:
    """The body bytes aiohttp had received when the connection failed.

    aiohttp raises the connection error on the next read and drops what its
    buffer still holds (often a few hundred KiB), which the next attempt
    would then download again. Those bytes arrived in order before the
    failure, so they are taken from the buffer (a private ``deque`` of
    ``bytes`` that has been stable across aiohttp 3.x). If the buffer does
    not look as expected, or would overrun the body's length, nothing is
    taken and the bytes are simply downloaded again.
    """
    buffer = getattr(content, "_buffer", None)
    offset = getattr(content, "_buffer_offset", 0)
    if not isinstance(buffer, collections.deque) or not isinstance(offset, int):
        return b""
    if not all(isinstance(piece, bytes) for piece in buffer):
        return b""
    data = b"".join(buffer)[offset:]
    if total is not None and size + len(data) > total:
        return b""
    return data


def _check_continuation(
    content_range: str | None, partial: PartialFile, url: ParsedURL, stats: DownloadStats
) -> None:
    parsed = parse_content_range(content_range)
    expected_total = partial.validator.total if partial.validator else None
    if (
        parsed is None
        or parsed.first != partial.size
        or (expected_total is not None and parsed.total not in (None, expected_total))
    ):
        partial.restart()
        stats.restarts += 1
        raise TransientDownloadError(
            f"Server answered the range request for {url.redacted} with "
            f"Content-Range {content_range!r}, which does not continue the "
            "partial file; restarting"
        )
