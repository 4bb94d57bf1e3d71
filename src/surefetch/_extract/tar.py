"""Tar archives, read as a stream: one pass, no seeking, members in order."""

from __future__ import annotations

import tarfile
from typing import IO, TypeVar, cast

from surefetch._extract.growing import Readable
from surefetch._extract.limits import ReadableInto
from surefetch._extract.writer import SafeTree

# tarfile keeps a buffer that it slices after every header: a small one keeps
# that cheap for archives of many small files, and member data is read in
# large pieces all the same.
_TAR_BUFFER_SIZE = 64 * 1024
_DRAIN_SIZE = 1 << 20
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


def extract_tar(stream: Readable, tree: SafeTree) -> None:
    """Extract the (decompressed) tar ``stream`` into ``tree``, then read it to its end.

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
    # tarfile only calls read() in stream mode; its annotation asks for more.
    fileobj = cast(IO[bytes], stream)
    with tarfile.open(
        fileobj=fileobj, mode="r|", bufsize=_TAR_BUFFER_SIZE, tarinfo=_StrictTarInfo
    ) as archive:
        for member in archive:
            # A stream never looks back, and keeping every member would cost
            # memory in proportion to their number. Iteration still works: it
            # asks for the next member once it runs out of known ones.
            archive.members.clear()  # type: ignore[attr-defined]
            _extract_member(archive, member, tree)
    # tarfile stops at the end-of-archive blocks; reading on lets the
    # decompressor check its trailer, so that a truncated download fails.
    while stream.read(_DRAIN_SIZE):
        pass


def _extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, tree: SafeTree) -> None:
    if member.isreg():
        data = archive.extractfile(member)
        assert data is not None  # always a file object for a regular member
        with data:
            tree.file(
                member.name,
                mode=member.mode,
                size=member.size,
                source=cast(ReadableInto, data),
                mtime=member.mtime,
            )
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
