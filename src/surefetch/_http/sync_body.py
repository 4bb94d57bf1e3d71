"""Reading a body on the standard-library transport: the twin of `surefetch._http.body`.

The body is read into reused 1 MiB buffers (``readinto1``, no copy) and each
buffer is written to the partial file as it comes; for a large body the
sha256 runs on a second thread, in order, while the next buffer is received,
so that on two cores hashing overlaps receiving and writing instead of adding
to them. Every byte received is on disk before the error that stopped the
body is raised.
"""

from __future__ import annotations

import queue
import select
import threading

from surefetch._http.partial import PartialFile
from surefetch._http.stats import ProgressCallback
from surefetch._http.writeback import Writeback

TYPE_CHECKING = False
if TYPE_CHECKING:
    import hashlib
    import http.client
    import socket
    from collections.abc import Callable

CHUNK_SIZE = 1 << 20
# Below this many bytes to go, hashing on a second thread costs more than it saves.
_THREADED_HASH_FROM = 8 << 20
# Buffers in flight between the receiving thread and the hashing one.
_BUFFERS = 4


def read_body(
    response: http.client.HTTPResponse,
    partial: PartialFile,
    total: int | None,
    progress: ProgressCallback | None,
    *,
    sock: socket.socket | None,
    read_timeout: Callable[[], float] | None,
    stopped: Callable[[], bool] | None = None,
) -> None:
    """Append the body of ``response`` to ``partial`` as it arrives, 1 MiB at a time.

    ``total`` is the file's size when known. With ``read_timeout``, the
    socket's timeout is set to what it returns before each read (the read
    timeout, cut to what is left before a deadline). Once ``stopped``
    returns True, the body is left unread after the bytes already received.
    """
    reader = _BodyReader(response, _readiness(sock))
    bounded = read_timeout is not None and sock is not None
    # A body of unknown length (chunked) is hashed inline: no thread for a small one.
    large = total is not None and total - partial.size >= _THREADED_HASH_FROM
    hashing = _HashThread(partial.hasher) if large else None
    # Starts nothing before 64 MiB, nor for a file that will not be fsynced.
    writeback = Writeback(partial.path, partial.size, needed=partial.synced_when_stored)
    # A small body gets a buffer of its own size: zeroing 1 MiB per small file adds up.
    size = CHUNK_SIZE if large or total is None else max(1, min(CHUNK_SIZE, total - partial.size))
    buffers = [memoryview(bytearray(size)) for _ in range(_BUFFERS if large else 1)]
    try:
        while True:
            index = 0 if hashing is None else hashing.free()
            if bounded:
                assert sock is not None and read_timeout is not None
                sock.settimeout(read_timeout())
            received, error = reader.fill(buffers[index])
            if not received:
                if hashing is not None:
                    hashing.give_back(index)
            else:
                chunk = buffers[index][:received]
                if hashing is None:
                    partial.append(chunk)
                else:
                    try:
                        partial.append_unhashed(chunk)
                    except BaseException:
                        hashing.give_back(index)
                        raise
                    hashing.hash(index, chunk)
                writeback.written(partial.size)
                if progress is not None:
                    progress(partial.size, total)
            if stopped is not None and stopped():
                break  # the caller raises; the failure the stop caused is not one
            if error is not None:
                raise error
            if not received:
                break
    finally:
        if hashing is not None:
            hashing.join()
        writeback.close()
        partial.close()
    if progress is not None:
        progress(partial.size, total)


def _readiness(sock: socket.socket | None) -> Callable[[], bool] | None:
    """A check, without waiting, whether more of the body can be read now (None: cannot tell)."""
    if sock is None:
        return None
    polled: Callable[[], bool]
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)

        def polled() -> bool:
            return bool(poller.poll(0))
    else:  # Windows: select() has no descriptor-number limit there

        def polled() -> bool:
            return bool(select.select([sock], [], [], 0)[0])

    pending = getattr(sock, "pending", None)  # TLS: bytes decrypted and waiting inside
    if pending is None:
        return polled
    return lambda: pending() > 0 or polled()


class _BodyReader:
    """Fills buffers from a reply's body, keeping what arrived before a failure.

    A body of known length (``Content-Length``, not chunked; `http.client`
    said which) is read with ``readinto1``, one receive at a time, stopping
    exactly at its end, so that a failure mid-buffer loses none of the bytes
    that came before it; the reply is then closed, which leaves the
    connection ready for the next request. Any other body is read through
    `http.client`'s own ``readinto``, which decodes chunks.
    """

    def __init__(
        self, response: http.client.HTTPResponse, ready: Callable[[], bool] | None = None
    ) -> None:
        self._response = response
        self._ready = ready
        length = response.length
        self._remaining = None if response.chunked or length is None else length

    def fill(self, buffer: memoryview) -> tuple[int, BaseException | None]:
        """Fill ``buffer`` as far as the body goes; the bytes put in it, and the error met."""
        remaining = self._remaining
        if remaining is None:
            try:
                return self._response.readinto(buffer), None
            except Exception as failed:
                return 0, failed
        fp = self._response.fp
        want = min(len(buffer), remaining)
        filled = 0
        met: BaseException | None = None
        try:
            while filled < want:
                if self._ready is None:
                    got = fp.readinto1(buffer[filled:want])
                elif filled == 0:
                    # Waits for the first bytes, and takes no more than are
                    # here: readinto1 would copy what the reply's buffer holds
                    # and then wait on the socket for the rest.
                    got = fp.readinto1(buffer[: min(want, len(fp.peek()))])
                elif self._ready():
                    got = fp.readinto1(buffer[filled:want])
                else:
                    # Nothing more has come yet: hand over what has, so that a
                    # slow or stalled server's bytes reach the file (and a
                    # streaming extraction) now rather than a buffer later.
                    break
                if not got:
                    break  # the server closed early: the shared end check tells it
                filled += got
        except Exception as failure:
            met = failure
        self._remaining = remaining - filled
        if met is not None:
            return filled, met
        if self._remaining == 0:
            self._response.close()  # read to its end: the connection may be kept
        return filled, None


class _HashThread:
    """A thread that hashes the received buffers in order while the next ones arrive.

    Started per large body and joined at its end: nothing runs between
    downloads. The receiving thread takes a free buffer index (`free`),
    fills it, and hands it over (`hash`); the thread hashes it and frees it.
    `join` waits for every handed-over buffer, so the partial file's hash
    always covers its bytes once the body loop has ended, however it ended.
    """

    def __init__(self, hasher: hashlib._Hash) -> None:
        self._hasher = hasher
        self._full: queue.SimpleQueue[tuple[int, memoryview] | None] = queue.SimpleQueue()
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(_BUFFERS):
            self._free.put(index)
        self._thread = threading.Thread(target=self._run, name="surefetch-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            index, chunk = item
            self._hasher.update(chunk)
            self._free.put(index)

    def free(self) -> int:
        """The index of a buffer that may be filled (waits for the hasher if none is)."""
        return self._free.get()

    def give_back(self, index: int) -> None:
        """Return a buffer that was taken but not filled."""
        self._free.put(index)

    def hash(self, index: int, chunk: memoryview) -> None:
        """Hash ``chunk`` (a view of buffer ``index``) after those handed over before it."""
        self._full.put((index, chunk))

    def join(self) -> None:
        """Wait until everything handed over is hashed; the thread then ends."""
        self._full.put(None)
        self._thread.join()
