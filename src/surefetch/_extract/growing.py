"""Reading a file while another thread is still writing it.

The download layer appends the HTTP body to a partial file, and on a
connection reset resumes with a Range request into the same file. Extraction
reads that file through a `GrowingFileReader`, so it runs while the body
streams and never notices a resume: it just waits a little longer for the
next bytes.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from surefetch._errors import SurefetchError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_READ_ALL_CHUNK = 1 << 20


class Readable(Protocol):
    """Anything with a blocking ``read(size)``: a file, a socket file, a reader."""

    def read(self, size: int = -1, /) -> bytes: ...


class StreamRewoundError(SurefetchError, EOFError):
    """The file being read was restarted from zero while it was being read.

    A streaming extraction has consumed bytes that no longer exist, so it
    cannot follow. Extract again from the start, for instance from the
    complete file once the download has finished.
    """

    # Only a retried download makes a Range request that a server can ignore,
    # and starting the whole download and extraction over is what fixes it.
    surefetch_transient = True


class GrowingFileReader(io.RawIOBase):
    """Reads a file that another thread (or the event loop) is still appending to.

    The writer reports progress with `advance`, and ends with exactly one of
    `finish` (EOF after the last byte) or `fail` (readers raise an error
    chained to the download's error); it must call one of them, in a
    ``finally``, or a reader waits forever. `rewind` (the writer restarted the
    file from zero, e.g. because the server ignored a Range request) is not
    supported once reading has started: readers raise `StreamRewoundError`.
    Call it before truncating the file, so that no reader sees new bytes at
    old offsets.

    Reads block until bytes are available, and return whatever is available
    (at most ``size``) rather than waiting for a full buffer.

    Example:
        >>> import tempfile, threading
        >>> path = Path(tempfile.mkdtemp()) / "body.part"
        >>> reader = GrowingFileReader(path)
        >>> def download() -> None:
        ...     with open(path, "wb") as f:
        ...         for chunk in (b"hello ", b"world"):
        ...             f.write(chunk)
        ...             f.flush()
        ...             reader.advance(f.tell())
        ...     reader.finish()
        >>> threading.Thread(target=download).start()
        >>> reader.readall()
        b'hello world'
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._changed = threading.Condition()
        self._available = 0
        self._finished = False
        self._error: BaseException | None = None
        self._rewound = False
        self._position = 0
        # Opened on the first read: the writer may create the file after us.
        self._file: io.FileIO | None = None

    # Writer side -------------------------------------------------------------

    def advance(self, total_bytes_written: int) -> None:
        """Make the file's first ``total_bytes_written`` bytes readable.

        Call it after the bytes are written and flushed. Example:
        ``reader.advance(f.tell())``.
        """
        with self._changed:
            if total_bytes_written > self._available:
                self._available = total_bytes_written
                self._changed.notify_all()

    def finish(self) -> None:
        """No more bytes will come: readers get EOF after the last one.

        Example: ``reader.finish()`` once the body is complete.
        """
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        """The download failed for good: readers raise an EOFError caused by ``error``.

        Example: ``reader.fail(ConnectionResetError(104, "reset"))``.
        """
        with self._changed:
            self._error = error
            self._changed.notify_all()

    def rewind(self) -> None:
        """The writer restarts the file from zero: readers raise `StreamRewoundError`.

        Example: ``reader.rewind()`` when a server answered 200 to a Range request.
        """
        with self._changed:
            self._rewound = True
            self._changed.notify_all()

    # Reader side -------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes, blocking until some exist; ``b""`` at the end."""
        if size < 0:
            return self.readall()
        count = self._wait(size)
        if count == 0:
            return b""
        data = self._open().read(count) or b""
        self._check_read(len(data), count)
        return data

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer`` with up to ``len(buffer)`` bytes, blocking until some exist."""
        view = memoryview(buffer).cast("B")
        count = self._wait(len(view))
        if count == 0:
            return 0
        got = self._open().readinto(view[:count]) or 0
        self._check_read(got, count)
        return got

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(_READ_ALL_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()

    def _wait(self, size: int) -> int:
        """How many bytes can be read now (0 at the end), once there are any."""
        if size == 0:
            return 0
        with self._changed:
            while True:
                if self._error is not None:
                    raise EOFError(f"download of {self._path.name} failed") from self._error
                if self._rewound:
                    raise StreamRewoundError(
                        f"download of {self._path.name} restarted from the beginning "
                        "(the server ignored the Range request); a streaming extraction "
                        "cannot follow it"
                    )
                if self._available > self._position:
                    return min(size, self._available - self._position)
                if self._finished:
                    return 0
                self._changed.wait()

    def _open(self) -> io.FileIO:
        if self._file is None:
            self._file = io.FileIO(self._path, "rb")
        return self._file

    def _check_read(self, got: int, expected: int) -> None:
        if got < expected:
            # The writer promised these bytes: the file shrank behind our back.
            raise EOFError(
                f"{self._path.name} has fewer bytes than announced ({self._position + got}"
                f" < {self._position + expected})"
            )
        self._position += got
