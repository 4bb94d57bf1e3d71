"""Build archives in every format from a description of their members.

Members are given as a mapping or, to repeat a name, a sequence of
``(name, member)`` pairs, in archive order::

    make_archive({"pkg/": Dir(), "pkg/run": File(b"#!/bin/sh", mode=0o755)}, ArchiveFormat.TAR_GZ)

Names are written as given (no normalisation), so that tests can build
malicious archives as easily as ordinary ones.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zstandard

from surefetch._extract.archive import ArchiveFormat

MTIME = 1_700_000_000


@dataclass(frozen=True)
class File:
    data: bytes = b""
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    """A hard link to an earlier member (tar only)."""

    target: str


@dataclass(frozen=True)
class Special:
    """A FIFO or device node: ``kind`` is tarfile.FIFOTYPE, CHRTYPE or BLKTYPE."""

    kind: bytes
    mode: int = 0o644


Member = File | Dir | Symlink | Hardlink | Special
Members = Mapping[str, Member] | Iterable[tuple[str, Member]]

SUFFIXES = {
    ArchiveFormat.TAR: ".tar",
    ArchiveFormat.TAR_GZ: ".tar.gz",
    ArchiveFormat.TAR_BZ2: ".tar.bz2",
    ArchiveFormat.TAR_XZ: ".tar.xz",
    ArchiveFormat.TAR_ZST: ".tar.zst",
    ArchiveFormat.ZIP: ".zip",
}
TAR_FORMATS = [f for f in ArchiveFormat if f is not ArchiveFormat.ZIP]


def _pairs(members: Members) -> list[tuple[str, Member]]:
    return list(members.items() if isinstance(members, Mapping) else members)


def make_tar(members: Members) -> bytes:
    """An uncompressed tar (PAX format) holding ``members``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, member in _pairs(members):
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            data = None
            if isinstance(member, File):
                info.mode, info.size, data = member.mode, len(member.data), io.BytesIO(member.data)
            elif isinstance(member, Dir):
                info.type, info.mode = tarfile.DIRTYPE, member.mode
            elif isinstance(member, Symlink):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, member.target, 0o777
            elif isinstance(member, Hardlink):
                info.type, info.linkname = tarfile.LNKTYPE, member.target
            else:
                info.type, info.mode = member.kind, member.mode
            tar.addfile(info, data)
    return buffer.getvalue()


def compress(tar: bytes, archive_format: ArchiveFormat) -> bytes:
    """``tar`` compressed as ``archive_format`` says (quickly rather than tightly)."""
    if archive_format is ArchiveFormat.TAR:
        return tar
    if archive_format is ArchiveFormat.TAR_GZ:
        return gzip.compress(tar, compresslevel=6, mtime=0)
    if archive_format is ArchiveFormat.TAR_BZ2:
        return bz2.compress(tar, compresslevel=1)
    if archive_format is ArchiveFormat.TAR_XZ:
        return lzma.compress(tar, preset=0)
    if archive_format is ArchiveFormat.TAR_ZST:
        return zstandard.ZstdCompressor(level=3).compress(tar)
    raise ValueError(f"{archive_format} is not a tar format")


def make_zip(members: Members) -> bytes:
    """A deflated zip holding ``members``, with Unix modes in ``external_attr``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted by some tests
        for name, member in _pairs(members):
            info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
            info.create_system = 3  # Unix: external_attr holds a mode
            info.compress_type = zipfile.ZIP_DEFLATED
            payload = b""
            if isinstance(member, File):
                info.external_attr = (stat.S_IFREG | member.mode) << 16
                payload = member.data
            elif isinstance(member, Dir):
                if not info.filename.endswith("/"):
                    info.filename += "/"
                info.external_attr = (stat.S_IFDIR | member.mode) << 16 | 0x10
            elif isinstance(member, Symlink):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                payload = member.target.encode()
            elif isinstance(member, Special):
                kinds = {
                    tarfile.FIFOTYPE: stat.S_IFIFO,
                    tarfile.CHRTYPE: stat.S_IFCHR,
                    tarfile.BLKTYPE: stat.S_IFBLK,
                }
                info.external_attr = (kinds[member.kind] | member.mode) << 16
            else:
                raise ValueError("zip cannot hold hard links")
            archive.writestr(info, payload)
    return buffer.getvalue()


def make_archive(members: Members, archive_format: ArchiveFormat) -> bytes:
    """The bytes of an archive of ``archive_format`` holding ``members``."""
    if archive_format is ArchiveFormat.ZIP:
        return make_zip(members)
    return compress(make_tar(members), archive_format)


def write_archive(
    directory: Path, members: Members, archive_format: ArchiveFormat, stem: str = "archive"
) -> Path:
    """Write an archive into ``directory``, named with the format's suffix; its path."""
    path = directory / (stem + SUFFIXES[archive_format])
    path.write_bytes(make_archive(members, archive_format))
    return path
