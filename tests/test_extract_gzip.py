"""The gzip reader, with zlib checking every trailer and in raw mode (sha256 checked later).

The raw mode parses each member's header itself (RFC 1952) and checks only
the trailer's size; both modes must read every valid stream alike, and
refuse cut and corrupt ones.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from surefetch._errors import UnsafeArchiveError
from surefetch._extract.archive import extract_stream
from surefetch._extract.formats import ArchiveFormat, GzipReader, gzip_header_size


class Trickle(io.RawIOBase):
    """A source that hands out at most ``step`` bytes per read: headers straddle reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._at = data, step, 0

    def read(self, size: int = -1, /) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        piece = self._data[self._at : self._at + n]
        self._at += len(piece)
        return piece


def member(
    data: bytes,
    *,
    name: bytes | None = None,
    comment: bytes | None = None,
    extra: bytes | None = None,
    header_crc: bool = False,
) -> bytes:
    """One gzip member with the optional header fields that gzip.compress never writes."""
    flags = (
        (0x02 if header_crc else 0)
        | (0x04 if extra is not None else 0)
        | (0x08 if name is not None else 0)
        | (0x10 if comment is not None else 0)
    )
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff"
    if extra is not None:
        header += struct.pack("<H", len(extra)) + extra
    if name is not None:
        header += name + b"\0"
    if comment is not None:
        header += comment + b"\0"
    if header_crc:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def read_all(stream: bytes, *, check_crc: bool, step: int = 1 << 20) -> bytes:
    return GzipReader(Trickle(stream, step), check_crc=check_crc).read()


MODES = pytest.mark.parametrize("check_crc", [True, False], ids=["crc", "raw"])

payloads = st.binary(max_size=3000)
fields = st.one_of(st.none(), st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"x")))


@given(
    parts=st.lists(
        st.tuples(payloads, fields, fields, st.one_of(st.none(), st.binary(max_size=40))),
        min_size=1,
        max_size=4,
    ),
    header_crc=st.booleans(),
    padding=st.integers(0, 3),
    step=st.sampled_from([1, 7, 64, 1 << 20]),
)
def test_both_modes_read_every_member_with_any_header_fields(
    parts: list[tuple[bytes, bytes | None, bytes | None, bytes | None]],
    header_crc: bool,
    padding: int,
    step: int,
) -> None:
    members = [
        member(data, name=name, comment=comment, extra=extra, header_crc=header_crc)
        for data, name, comment, extra in parts
    ]
    stream = b"".join(m + bytes(padding) for m in members)
    expected = b"".join(data for data, *_ in parts)
    assert gzip.decompress(b"".join(members)) == expected  # what gzip itself reads
    assert read_all(stream, check_crc=True, step=step) == expected
    assert read_all(stream, check_crc=False, step=step) == expected


@MODES
@pytest.mark.parametrize("cut", [1, 5, 11, 20, -9, -3, -1])
def test_a_stream_cut_anywhere_raises_eof(check_crc: bool, cut: int) -> None:
    whole = member(b"payload " * 500, name=b"archive.tar")
    with pytest.raises(EOFError):
        read_all(whole[:cut], check_crc=check_crc, step=3)


def test_a_wrong_crc_is_caught_by_zlib_and_left_to_the_sha256_in_raw_mode() -> None:
    good = member(b"payload " * 500)
    bad = good[:-8] + struct.pack("<I", zlib.crc32(b"other")) + good[-4:]
    with pytest.raises(zlib.error):
        read_all(bad, check_crc=True)
    assert read_all(bad, check_crc=False) == b"payload " * 500


@MODES
def test_a_wrong_size_in_the_trailer_is_refused(check_crc: bool) -> None:
    good = member(b"payload " * 500)
    bad = good[:-4] + struct.pack("<I", 1)
    with pytest.raises(zlib.error):
        read_all(bad, check_crc=check_crc)


@MODES
def test_bytes_that_are_no_gzip_are_refused(check_crc: bool) -> None:
    with pytest.raises(zlib.error):
        read_all(b"PK\x03\x04 not a gzip stream at all", check_crc=check_crc)


def test_a_header_name_without_end_is_refused_after_64_kib() -> None:
    endless = b"\x1f\x8b\x08\x08\0\0\0\0\0\xff" + b"n" * (80 << 10)
    assert gzip_header_size(endless[:1000]) is None  # not yet known
    with pytest.raises(zlib.error, match="64 KiB"):
        gzip_header_size(endless)


def test_a_bomb_is_stopped_in_raw_mode_too(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        zeros = bytes(24 << 20)  # deflates about 1000 to 1
        info = tarfile.TarInfo("zeros")
        info.size = len(zeros)
        tar.addfile(info, io.BytesIO(zeros))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        extract_stream(
            io.BytesIO(buffer.getvalue()),
            dest,
            format=ArchiveFormat.TAR_GZ,
            name="bomb.tar.gz",
            checksummed=True,
        )
    assert (dest / "zeros").stat().st_size < len(zeros)  # stopped early
