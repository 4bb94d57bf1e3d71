"""Stream a response body into a partial file: 1 MiB chunks, written and hashed off the loop."""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor

from surefetch._http.aiohttp_support import salvage_buffered
from surefetch._http.partial import SMALL_BODY, PartialFile
from surefetch._http.stats import ProgressCallback
from surefetch._http.writeback import Writeback

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp

CHUNK_SIZE = 1 << 20

# Chunks handed to the writer thread and not yet on disk. With one, the writer
# idles while the event loop wakes up, takes its result and hands it the next
# chunk; with two it always has the next one queued. More buys nothing measurable.
_IN_FLIGHT = 2


async def stream_body(
    response: aiohttp.ClientResponse,
    partial: PartialFile,
    total: int | None,
    progress: ProgressCallback | None,
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
        await _stream_small_body(response, partial, total, progress)
        return
    loop = asyncio.get_running_loop()
    writer = _Writer(partial)
    pending: collections.deque[asyncio.Future[None]] = collections.deque()
    received = partial.size  # end offset of the bytes handed to the writer
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="surefetch-write") as pool:
            try:
                async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                    # Handed over first: whatever fails below, this chunk is
                    # written before the bytes _salvage takes after it.
                    pending.append(_write(loop, pool, writer, chunk, received))
                    received += len(chunk)
                    if len(pending) > _IN_FLIGHT:
                        # Shielded: cancelling a queued write would leave a gap.
                        # Taken off only once awaited: a wait cancelled meanwhile
                        # leaves it to the drain below, which takes its error
                        # (else "Future exception was never retrieved" is printed).
                        await asyncio.shield(pending[0])
                        pending.popleft()
                        if progress is not None:
                            progress(partial.size, total)
            except Exception:
                await _drain(pending)
                rest = salvage_buffered(response.content, received, total)
                if rest:
                    await asyncio.shield(_write(loop, pool, writer, rest, received))
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
    total: int | None,
    progress: ProgressCallback | None,
) -> None:
    """`_stream_body` for a body of at most `SMALL_BODY`: written as it arrives, in the loop."""
    try:
        try:
            async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                partial.append(chunk)
        except Exception:
            rest = salvage_buffered(response.content, partial.size, total)
            if rest:
                partial.append(rest)
            raise
    finally:
        partial.close()
    if progress is not None:
        progress(partial.size, total)


def _write(
    loop: asyncio.AbstractEventLoop,
    pool: ThreadPoolExecutor,
    writer: _Writer,
    chunk: bytes,
    offset: int,
) -> asyncio.Future[None]:
    """Queue ``chunk`` for the writer thread.

    A write whose waiter was cancelled (the download stopped while the
    write ran) still ends, and its error is taken by a callback, so that
    asyncio never prints "Future exception was never retrieved" over the
    error that the failure really reports.
    """
    future = loop.run_in_executor(pool, writer.write, chunk, offset)
    future.add_done_callback(_retrieve)
    return future


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


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

    def __init__(self, partial: PartialFile) -> None:
        self.partial = partial
        self.writeback = Writeback(partial.path, partial.size, needed=partial.synced_when_stored)

    def write(self, chunk: bytes, offset: int) -> None:
        partial = self.partial
        if partial.size != offset:
            return  # an earlier write failed: never write after a gap
        partial.append(chunk)
        self.writeback.written(partial.size)
