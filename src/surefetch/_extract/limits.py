"""Limits on what an archive may expand to, and the counting that enforces them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

from surefetch._extract.growing import Readable

MiB = 1 << 20
GiB = 1 << 30

RATIO_GRACE_BYTES = 8 * MiB
"""The compression ratio is only judged past this many expanded bytes: small
archives of very repetitive data are legitimate, and their size is harmless."""


@dataclass(frozen=True)
class ExtractLimits:
    """How far an archive may expand before it is refused as unsafe.

    ``max_ratio`` is expanded bytes over compressed bytes, judged as the
    archive expands once `RATIO_GRACE_BYTES` have come out, so that a
    decompression bomb is stopped early. ``max_member_bytes`` (no limit by
    default) caps a single file. ``max_depth`` caps how many directories deep
    a member lands (``a/b/c`` is 3 deep; counted after ``strip_components``,
    and through any symlink on the way): a 200-byte tar.gz can hold 2,500
    nested directories, a tree that tools which walk it recursively (and
    paths, past 4096 bytes) cannot cope with. A deeper member is refused
    before anything of it is written.

    Example:
        >>> ExtractLimits(max_total_bytes=1 << 30, max_files=10_000).max_ratio
        200.0
        >>> ExtractLimits().max_depth
        256
    """

    max_total_bytes: int = 20 * GiB
    max_files: int = 1_000_000
    max_ratio: float = 200.0
    max_member_bytes: int | None = None
    max_depth: int = 256


@dataclass(frozen=True)
class ExtractResult:
    """What an extraction wrote: ``files`` counts regular files (hard links
    included), ``dirs`` the directories made, ``total_bytes`` the file data.

    Example:
        >>> ExtractResult(files=2, dirs=1, symlinks=0, total_bytes=10).files
        2
    """

    files: int
    dirs: int
    symlinks: int
    total_bytes: int


class ReadableInto(Protocol):
    """A source that fills a caller's buffer, so member data needs no new buffers."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


class CountingReader:
    """Passes reads through and counts the bytes (the compressed side of the ratio).

    Example:
        >>> import io
        >>> reader = CountingReader(io.BytesIO(b"abc"))
        >>> reader.read(2), reader.count
        (b'ab', 2)
    """

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self.count += len(data)
        return data


class ExpansionMeter:
    """Counts expanded bytes and calls ``refuse`` once they outgrow ``max_ratio``.

    Example:
        >>> import sys
        >>> meter = ExpansionMeter(200.0, compressed=lambda: 1000, refuse=sys.exit)
        >>> meter.add(100_000)
        >>> meter.expanded
        100000
    """

    def __init__(
        self, max_ratio: float, *, compressed: Callable[[], int], refuse: Callable[[str], NoReturn]
    ) -> None:
        self._max_ratio = max_ratio
        self._compressed = compressed
        self._refuse = refuse
        self.expanded = 0

    def add(self, count: int) -> None:
        self.expanded += count
        if self.expanded > RATIO_GRACE_BYTES:
            compressed = self._compressed()
            if self.expanded > self._max_ratio * compressed:
                self._refuse(
                    f"expands the archive to more than {self._max_ratio:g} times its compressed "
                    f"size ({self.expanded} bytes from {compressed}): a decompression bomb?"
                )


class MeteredReader:
    """Passes reads of a stream through an `ExpansionMeter`.

    Example:
        >>> import io, sys
        >>> meter = ExpansionMeter(200.0, compressed=lambda: 1, refuse=sys.exit)
        >>> MeteredReader(io.BytesIO(b"abc"), meter).read(), meter.expanded
        (b'abc', 3)
    """

    def __init__(self, source: Readable, meter: ExpansionMeter) -> None:
        self._source = source
        self._meter = meter

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._meter.add(len(data))
        return data


class MeteredMember:
    """Passes ``readinto`` of one member's data through an `ExpansionMeter`.

    Example:
        >>> import io, sys
        >>> meter = ExpansionMeter(200.0, compressed=lambda: 1, refuse=sys.exit)
        >>> MeteredMember(io.BytesIO(b"abc"), meter).readinto(memoryview(bytearray(8)))
        3
    """

    def __init__(self, source: ReadableInto, meter: ExpansionMeter) -> None:
        self._source = source
        self._meter = meter

    def readinto(self, buffer: memoryview, /) -> int:
        count = self._source.readinto(buffer) or 0
        self._meter.add(count)
        return count
