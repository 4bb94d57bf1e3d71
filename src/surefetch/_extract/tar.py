"""Tar archives, read as a stream: one pass, no seeking back, members in order."""

from __future__ import annotations

import io
import tarfile
from typing import IO, TypeVar, cast

from surefetch._extract.growing import Readable
from surefetch._extract.limits import ReadableInto
from surefetch._extract.writer import SafeTree

# Pieces asked of the decompressor; each comes back whole when it is no
# larger (GzipReader hands out its output as is), so this also caps how much
# of a piece a header's read leaves behind.
_READ_SIZE = 1 << 20
# Undocumented, but in every Python 3: the all-zero block that ends an archive.
_END_OF_ARCHIVE: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]

_T = TypeVar("_T", bound="_StrictTarInfo")


class _StrictTarInfo(tarfile.TarInfo):
    """Reports a damaged or cut-short archive instead of ending it quietly.

    Past the first member, tarfile takes a missing, truncated or invalid
    header for the end of the archive, so a truncated tar would look complete.
    """

    @classmethod
    def fromtarfile(cls: type[_T], archive: tarfile.TarFile) -> _T:
        try:
            return super().fromtarfile(archive)
        except _END_OF_ARCHIVE:
            raise
        except tarfile.HeaderError as error:
            raise tarfile.ReadError(f"bad header at offset {archive.offset}: {error}") from error


class _ForwardFile:
    """A stream as the file tarfile reads an archive from: reads, and seeks forward only.

    tarfile's stream mode (``r|``) joins and slices its own 64 KiB buffer
    for every read, which for large members copies each byte three or four
    times; its plain mode only needs ``read``, ``tell`` and the forward
    seeks with which it skips what a member left unread. This serves those
    from the decompressor's pieces as they come, and lets member data be
    copied straight out of them (`MemberData`). Seeking back raises
    `tarfile.ReadError`: one pass over the stream is all there is.

    Example:
        >>> forward = _ForwardFile(io.BytesIO(b"0123456789"))
        >>> forward.read(3), forward.seek(8), forward.read(5), forward.tell()
        (b'012', 8, b'89', 10)
    """

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._piece = memoryview(b"")
        self._position = 0
        self._ended = False

    def _next_piece(self) -> memoryview:
        """The unread rest of the current piece, or the next one (empty at the end)."""
        if not self._piece and not self._ended:
            data = self._source.read(_READ_SIZE)
            if data:
                self._piece = memoryview(data)
            else:
                self._ended = True
        return self._piece

    def _take(self, size: int) -> memoryview:
        """Up to ``size`` bytes of one piece (fewer at the piece's end; empty at the end)."""
        piece = self._next_piece()
        taken, self._piece = piece[:size], piece[size:]
        self._position += len(taken)
        return taken

    def read(self, size: int = -1, /) -> bytes:
        """``size`` bytes (all the rest when negative), fewer only at the end of the stream."""
        parts = []
        while size != 0 and (taken := self._take(_READ_SIZE if size < 0 else size)):
            parts.append(taken)
            if size > 0:
                size -= len(taken)
        return b"".join(parts)

    def readinto(self, buffer: memoryview, /) -> int:
        """Fill the start of ``buffer`` from one piece; 0 at the end of the stream."""
        taken = self._take(len(buffer))
        buffer[: len(taken)] = taken
        return len(taken)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Skip forward to ``offset`` (or the end of the stream, if it comes first)."""
        if whence != io.SEEK_SET or offset < self._position:
            raise tarfile.ReadError("cannot seek back in a stream")
        while self._position < offset and self._take(offset - self._position):
            pass
        return self._position


class MemberData:
    """The ``size`` bytes of one member's data, read straight from a `_ForwardFile`.

    Example:
        >>> data = MemberData(_ForwardFile(io.BytesIO(b"abcdef")), 4)
        >>> buffer = memoryview(bytearray(8))
        >>> data.readinto(buffer), bytes(buffer[:4]), data.readinto(buffer)
        (4, b'abcd', 0)
    """

    def __init__(self, source: _ForwardFile, size: int) -> None:
        self._source = source
        self._left = size

    def readinto(self, buffer: memoryview, /) -> int:
        if self._left == 0:
            return 0
        count = self._source.readinto(buffer[: self._left])
        if count == 0:
            raise tarfile.ReadError("unexpected end of data")
        self._left -= count
        return count


def extract_tar(stream: Readable, tree: SafeTree) -> None:
    """Extract the (decompressed) tar ``stream`` into ``tree``, then read it to its end.

    tarfile parses every header (and reads sparse members); the data of a
    regular member is copied from the stream into the file directly.

    Example:
        >>> import io, tempfile
        >>> from pathlib import Path
        >>> from surefetch._extract.limits import ExtractLimits
        >>> buffer = io.BytesIO()
        >>> tarfile.open(fileobj=buffer, mode="w").close()
        >>> tree = SafeTree(Path(tempfile.mkdtemp()), archive="empty.tar", limits=ExtractLimits())
        >>> extract_tar(io.BytesIO(buffer.getvalue()), tree)
        >>> tree.result().files
        0
    """
    forward = _ForwardFile(stream)
    # tarfile's plain mode only reads, tells and seeks forward on this file;
    # its annotation asks for a whole binary file.
    fileobj = cast(IO[bytes], forward)
    with tarfile.open(fileobj=fileobj, mode="r:", tarinfo=_StrictTarInfo) as archive:
        for member in archive:
            # A stream never looks back, and keeping every member would cost
            # memory in proportion to their number. Iteration still works: it
            # asks for the next member once it runs out of known ones.
            archive.members.clear()  # type: ignore[attr-defined]
            _extract_member(archive, forward, member, tree)
    # tarfile stops at the end-of-archive blocks; reading on lets the
    # decompressor check its trailer, so that a truncated download fails.
    while forward.read(_READ_SIZE):
        pass


def _extract_member(
    archive: tarfile.TarFile, forward: _ForwardFile, member: tarfile.TarInfo, tree: SafeTree
) -> None:
    if member.isreg():
        if member.sparse is None:
            forward.seek(member.offset_data)
            _file(tree, member, MemberData(forward, member.size))
        else:
            # A sparse member's data is a map of holes and pieces: tarfile reads it.
            data = archive.extractfile(member)
            assert data is not None  # always a file object for a regular member
            with data:
                _file(tree, member, cast(ReadableInto, data))
    elif member.isdir():
        tree.directory(member.name)
    elif member.issym():
        tree.symlink(member.name, member.linkname)
    elif member.islnk():
        tree.hardlink(member.name, member.linkname)
    elif member.ischr() or member.isblk():
        tree.special(member.name, "is a device node")
    elif member.isfifo():
        tree.special(member.name, "is a FIFO")
    else:
        tree.special(member.name, f"has an unsupported type {member.type!r}")


def _file(tree: SafeTree, member: tarfile.TarInfo, source: ReadableInto) -> None:
    tree.file(member.name, mode=member.mode, size=member.size, source=source, mtime=member.mtime)
