"""Archive formats: telling them apart, and decompressing tar streams."""

from __future__ import annotations

import bz2
import enum
import lzma
import zlib
from typing import IO, cast

import zstandard

from surefetch._errors import ExtractError
from surefetch._extract.growing import Readable

_ZSTD_READ_SIZE = 1 << 20
_GZIP_READ_SIZE = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around a deflate stream
_GZIP_FEED_SIZE = 128 << 10
_GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1, ID2, CM=deflate
_GZIP_HEADER_MAX = 64 << 10  # a longer name or comment is refused
_GZIP_MAX_OUTPUT = 1 << 20
# A zstd frame can expand about 32,000 times (run-length blocks), and its
# decompressor has no output limit: feeding small pieces caps the memory one
# call can take at ~128 MiB, even for a bomb that the ratio check then stops.
_ZSTD_FEED_SIZE = 4096


class ArchiveFormat(enum.Enum):
    """An archive format surefetch can extract."""

    TAR = "tar"
    TAR_GZ = "tar.gz"
    TAR_BZ2 = "tar.bz2"
    TAR_XZ = "tar.xz"
    TAR_ZST = "tar.zst"
    ZIP = "zip"


_SUFFIXES = (
    (".tar", ArchiveFormat.TAR),
    (".tar.gz", ArchiveFormat.TAR_GZ),
    (".tgz", ArchiveFormat.TAR_GZ),
    (".tar.bz2", ArchiveFormat.TAR_BZ2),
    (".tbz2", ArchiveFormat.TAR_BZ2),
    (".tar.xz", ArchiveFormat.TAR_XZ),
    (".txz", ArchiveFormat.TAR_XZ),
    (".tar.zst", ArchiveFormat.TAR_ZST),
    (".tzst", ArchiveFormat.TAR_ZST),
    (".zip", ArchiveFormat.ZIP),
    (".whl", ArchiveFormat.ZIP),
)

_MAGIC = (
    (b"\x1f\x8b", ArchiveFormat.TAR_GZ),
    (b"BZh", ArchiveFormat.TAR_BZ2),
    (b"\xfd7zXZ\x00", ArchiveFormat.TAR_XZ),
    (b"\x28\xb5\x2f\xfd", ArchiveFormat.TAR_ZST),
    (b"PK\x03\x04", ArchiveFormat.ZIP),
    (b"PK\x05\x06", ArchiveFormat.ZIP),  # an empty zip: only the end of central directory
)
_USTAR_OFFSET = 257

HEAD_SIZE = 512
"""How many leading bytes `detect_format` wants to see (fewer for a shorter file)."""


def format_from_name(name: str) -> ArchiveFormat | None:
    """The format a file name's suffix announces, or None.

    Example:
        >>> format_from_name("numpy-2.0.tar.GZ")
        <ArchiveFormat.TAR_GZ: 'tar.gz'>
    """
    lowered = name.lower()
    for suffix, archive_format in _SUFFIXES:
        if lowered.endswith(suffix):
            return archive_format
    return None


def format_from_magic(head: bytes) -> ArchiveFormat | None:
    """The format the first bytes of a file reveal, or None.

    Example:
        >>> format_from_magic(b"BZh91AY&SY")
        <ArchiveFormat.TAR_BZ2: 'tar.bz2'>
    """
    for magic, archive_format in _MAGIC:
        if head.startswith(magic):
            return archive_format
    if head[_USTAR_OFFSET : _USTAR_OFFSET + 5] == b"ustar":
        return ArchiveFormat.TAR
    return None


def detect_format(*, name: str | None, head: bytes) -> ArchiveFormat:
    """The format of an archive, from its name and its first bytes (`HEAD_SIZE`).

    Name and content must agree; an old tar without the "ustar" magic is taken
    on its name alone. An HTML error page saved as ``x.tar.gz`` is therefore
    caught here, with a message saying so.

    Example:
        >>> detect_format(name="pkg-1.0.tgz", head=b"\\x1f\\x8b\\x08\\x00")
        <ArchiveFormat.TAR_GZ: 'tar.gz'>
        >>> detect_format(name=None, head=b"PK\\x03\\x04")
        <ArchiveFormat.ZIP: 'zip'>

    Raises:
        ExtractError: the format is unknown, or the name and content disagree.
    """
    by_name = format_from_name(name) if name else None
    by_magic = format_from_magic(head)
    label = repr(name) if name else "archive"
    if by_name is None and by_magic is None:
        raise ExtractError(
            f"Cannot extract {label}: unknown archive format (no known suffix, and the content "
            f"starts with {head[:16]!r})"
        )
    if by_name is None:
        assert by_magic is not None
        return by_magic
    if by_magic is None and by_name is ArchiveFormat.TAR:
        return by_name
    if by_magic is not by_name:
        looks = f"looks like {by_magic.value}" if by_magic else f"starts with {head[:16]!r}"
        raise ExtractError(
            f"Cannot extract {label}: the name says {by_name.value}, but the content {looks}"
        )
    return by_name


def decompressed(
    source: Readable, archive_format: ArchiveFormat, *, checksummed: bool = False
) -> Readable:
    """The tar stream inside ``source``, decompressed as it is read.

    Every reader raises EOFError when the compressed stream is cut short.
    ``checksummed`` says that the archive's bytes are checked against a
    known sha256 before anything extracted from them is used: gzip's own
    CRC-32 is then not computed (see `GzipReader`).

    Example:
        >>> import gzip, io
        >>> decompressed(io.BytesIO(gzip.compress(b"tar")), ArchiveFormat.TAR_GZ).read()
        b'tar'
    """
    # The stdlib readers only ever call read(); their annotations ask for more.
    file = cast(IO[bytes], source)
    if archive_format is ArchiveFormat.TAR:
        return source
    if archive_format is ArchiveFormat.TAR_GZ:
        return GzipReader(source, check_crc=not checksummed)
    if archive_format is ArchiveFormat.TAR_BZ2:
        return bz2.BZ2File(file)
    if archive_format is ArchiveFormat.TAR_XZ:
        return lzma.LZMAFile(file)
    if archive_format is ArchiveFormat.TAR_ZST:
        return ZstdReader(source)
    raise ValueError(f"{archive_format.value} is not a tar stream")


def gzip_header_size(data: bytes | memoryview) -> int | None:
    """How many bytes the gzip member header at the start of ``data`` takes (RFC 1952).

    None when ``data`` ends inside the header. Raises `zlib.error` for bytes
    that are no gzip header, as zlib does.

    Example:
        >>> import gzip
        >>> gzip_header_size(gzip.compress(b"data")), gzip_header_size(gzip.compress(b"")[:4])
        (10, None)
    """
    head = bytes(data[:_GZIP_HEADER_MAX])
    known = min(len(head), 3)
    if head[:known] != _GZIP_MAGIC[:known] or (len(head) > 3 and head[3] & 0xE0):
        raise zlib.error("Error -3 while decompressing data: incorrect header check")
    if len(head) < 10:
        return None
    flags, end = head[3], 10
    if flags & 0x04:  # FEXTRA: a length, then that many bytes
        if len(head) < end + 2:
            return None
        end += 2 + int.from_bytes(head[end : end + 2], "little")
    for field in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated
        if flags & field:
            zero = head.find(b"\x00", end)
            if zero < 0:
                if len(head) == _GZIP_HEADER_MAX:
                    raise zlib.error("gzip header longer than 64 KiB")
                return None
            end = zero + 1
    if flags & 0x02:  # FHCRC
        end += 2
    return end if len(head) >= end else None


class GzipReader:
    """Decompresses a gzip stream (one or more members) as it is read, in large pieces.

    `gzip.GzipFile` reads its source 8 KiB at a time, which for a streaming
    extraction means a Python call through every reader layer per 8 KiB;
    this reads 1 MiB at a time. A stream cut short raises EOFError, as
    GzipFile does. zlib is fed ``_GZIP_FEED_SIZE`` at a time with its output
    capped: a bomb takes at most ``_GZIP_MAX_OUTPUT`` of memory before the
    ratio check stops it, and no call copies more than one piece of unread
    input (zlib copies what it did not consume, so feeding it the whole 1 MiB
    with a small cap would copy that megabyte again on every call).

    zlib checks each member's header and trailer (CRC-32 and size). Without
    ``check_crc``, for an archive whose sha256 is checked anyway, the header
    is skipped here and the deflate stream inflated raw: the CRC-32 costs
    about a third of the inflate time, and only the trailer's size is checked.

    Example:
        >>> import gzip, io
        >>> GzipReader(io.BytesIO(gzip.compress(b"da") + gzip.compress(b"ta"))).read()
        b'data'
        >>> GzipReader(io.BytesIO(gzip.compress(b"data")), check_crc=False).read()
        b'data'
    """

    def __init__(self, source: Readable, *, check_crc: bool = True) -> None:
        self._source = source
        self._check_crc = check_crc
        self._member = self._new_member()
        self._input = memoryview(b"")
        self._pending = memoryview(b"")
        self._in_member = False
        self._at_end = False
        self._member_size = 0  # bytes out of the current member (raw inflate only)

    def _new_member(self) -> zlib._Decompress:
        return zlib.decompressobj(_GZIP_WBITS if self._check_crc else -zlib.MAX_WBITS)

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` decompressed bytes (all when negative); ``b""`` at the end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(_GZIP_READ_SIZE), b""))
        if not self._pending:
            data = self._inflate()
            if len(data) <= size:
                return data
            self._pending = memoryview(data)
        # A view, so that handing out a large piece bit by bit copies each byte once.
        data, self._pending = bytes(self._pending[:size]), self._pending[size:]
        return data

    def _more_input(self) -> bool:
        """Append the next piece of the source to the input; False at its end."""
        more = self._source.read(_GZIP_READ_SIZE)
        if not more:
            return False
        self._input = memoryview(bytes(self._input) + more) if self._input else memoryview(more)
        return True

    def _inflate(self) -> bytes:
        """The next decompressed piece (at most ``_GZIP_MAX_OUTPUT``), ``b""`` at the end."""
        while not self._at_end:
            if not self._input and not self._more_input():
                if self._in_member:
                    raise EOFError("gzip stream ended before the end of its member")
                self._at_end = True
                break
            if not self._in_member:
                # Gzip files may be padded with zeros after a member, as gzip allows.
                self._input = memoryview(bytes(self._input).lstrip(b"\x00"))
                if not self._input:
                    continue
                if not self._check_crc and not self._skip_header():
                    continue
            self._in_member = True
            piece = self._input[:_GZIP_FEED_SIZE]
            data = self._member.decompress(piece, _GZIP_MAX_OUTPUT)
            self._member_size += len(data)
            if self._member.eof:
                # What follows the member belongs to the next one.
                rest = self._input[len(piece) :]
                self._input = memoryview(self._member.unused_data + bytes(rest))
                if not self._check_crc:
                    self._end_raw_member()
                self._member = self._new_member()
                self._in_member = False
            else:
                self._input = self._input[len(piece) - len(self._member.unconsumed_tail) :]
            if data:
                return data
        return b""

    def _skip_header(self) -> bool:
        """Drop a member's header from the input; False when more input is needed for it."""
        size = gzip_header_size(self._input)
        if size is None:
            if not self._more_input():
                raise EOFError("gzip stream ended inside a member's header")
            return False
        self._input = self._input[size:]
        self._member_size = 0
        self._in_member = True
        return True

    def _end_raw_member(self) -> None:
        """Check the trailer's size (the CRC is left to the archive's sha256)."""
        while len(self._input) < 8:
            if not self._more_input():
                raise EOFError("gzip stream ended inside a member's trailer")
        size = int.from_bytes(self._input[4:8], "little")
        if size != self._member_size & 0xFFFFFFFF:
            raise zlib.error("Error -3 while decompressing data: incorrect length check")
        self._input = self._input[8:]


class ZstdReader:
    """Decompresses a zstd stream (one or more frames) as it is read.

    zstandard's own ``stream_reader`` ends silently when a frame is cut short;
    this one raises EOFError, so that a truncated download is not taken for
    a complete archive.

    Example:
        >>> import io
        >>> ZstdReader(io.BytesIO(zstandard.compress(b"data"))).read(100)
        b'data'
    """

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._in_frame = False
        self._chunk = memoryview(b"")
        self._offset = 0
        self._pending = memoryview(b"")
        self._at_end = False

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` decompressed bytes (all when negative); ``b""`` at the end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(_ZSTD_READ_SIZE), b""))
        while not self._pending and not self._at_end:
            self._decompress_some()
        data = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        return data

    def _decompress_some(self) -> None:
        if self._offset >= len(self._chunk):
            chunk = self._source.read(_ZSTD_READ_SIZE)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended before the end of its frame")
                self._at_end = True
                return
            self._chunk, self._offset = memoryview(chunk), 0
        piece = self._chunk[self._offset : self._offset + _ZSTD_FEED_SIZE]
        self._offset += len(piece)
        self._in_frame = True
        self._pending = memoryview(self._frame.decompress(piece))
        if self._frame.eof:
            # What follows the frame belongs to the next one.
            self._offset -= len(self._frame.unused_data)
            self._frame = self._decompressor.decompressobj()
            self._in_frame = False
