"""Extraction: formats, round trips, streaming from a growing file, failures and limits."""

from __future__ import annotations

import io
import os
import random
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from archives import (
    MTIME,
    SUFFIXES,
    TAR_FORMATS,
    Dir,
    File,
    Hardlink,
    Member,
    Members,
    Symlink,
    compress,
    make_archive,
    make_tar,
    write_archive,
)
from surefetch._errors import ExtractError, UnsafeArchiveError
from surefetch._extract.archive import (
    ArchiveFormat,
    ExtractLimits,
    ExtractResult,
    GrowingFileReader,
    StreamRewoundError,
    detect_format,
    extract_file,
    extract_stream,
)
from surefetch._retry.classify import classify

ALL_FORMATS = list(ArchiveFormat)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "dest"
    path.mkdir()
    return path


def chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root``: directories, files (content, executable), links."""
    tree: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            tree[name] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[name] = "dir"
        else:
            tree[name] = ("file", path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return tree


# detect_format -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.tar", ArchiveFormat.TAR),
        ("x.tar.gz", ArchiveFormat.TAR_GZ),
        ("x.tgz", ArchiveFormat.TAR_GZ),
        ("x.tar.bz2", ArchiveFormat.TAR_BZ2),
        ("x.tbz2", ArchiveFormat.TAR_BZ2),
        ("x.tar.xz", ArchiveFormat.TAR_XZ),
        ("x.txz", ArchiveFormat.TAR_XZ),
        ("x.tar.zst", ArchiveFormat.TAR_ZST),
        ("x.tzst", ArchiveFormat.TAR_ZST),
        ("x.zip", ArchiveFormat.ZIP),
        ("pkg-1.0-py3-none-any.whl", ArchiveFormat.ZIP),
        ("PKG-1.0.TAR.GZ", ArchiveFormat.TAR_GZ),
    ],
)
def test_detect_format_agrees_with_name_and_magic(name: str, expected: ArchiveFormat) -> None:
    head = make_archive({"a": File(b"x")}, expected)[:512]
    assert detect_format(name=name, head=head) is expected


@pytest.mark.parametrize("archive_format", ALL_FORMATS)
def test_detect_format_by_magic_alone(archive_format: ArchiveFormat) -> None:
    head = make_archive({"a": File(b"x")}, archive_format)[:512]
    assert detect_format(name=None, head=head) is archive_format
    assert detect_format(name="download", head=head) is archive_format


def test_detect_format_recognises_an_empty_zip() -> None:
    assert detect_format(name=None, head=make_archive({}, ArchiveFormat.ZIP)) is ArchiveFormat.ZIP


def test_detect_format_takes_a_tar_without_magic_on_its_name() -> None:
    assert detect_format(name="old.tar", head=b"\0" * 512) is ArchiveFormat.TAR


def test_detect_format_refuses_a_name_that_contradicts_the_content() -> None:
    zip_head = make_archive({"a": File()}, ArchiveFormat.ZIP)[:512]
    with pytest.raises(ExtractError, match=r"'x.tar.gz'.*name says tar.gz.*looks like zip"):
        detect_format(name="x.tar.gz", head=zip_head)


def test_detect_format_refuses_an_error_page_named_like_an_archive() -> None:
    with pytest.raises(ExtractError, match=r"name says tar.zst, but the content starts with b'<!"):
        detect_format(name="x.tar.zst", head=b"<!DOCTYPE html><html>Not Found</html>")


def test_detect_format_refuses_an_unknown_format() -> None:
    with pytest.raises(ExtractError, match=r"'x.rar': unknown archive format"):
        detect_format(name="x.rar", head=b"Rar!\x1a\x07\x00")
    with pytest.raises(ExtractError, match="unknown archive format"):
        detect_format(name=None, head=b"")


# Round trips -------------------------------------------------------------------

_names = st.text(alphabet="abcz_-.0", min_size=1, max_size=6).filter(lambda s: s not in {".", ".."})
_leaves = st.tuples(st.binary(max_size=200), st.booleans())
_subtrees = st.recursive(
    _leaves, lambda children: st.dictionaries(_names, children, max_size=3), max_leaves=8
)
_trees = st.dictionaries(_names, _subtrees, max_size=4)


def _flatten(tree: dict[str, object], prefix: str = "") -> list[tuple[str, File | Dir]]:
    members: list[tuple[str, File | Dir]] = []
    for name, node in tree.items():
        if isinstance(node, dict):
            members.append((prefix + name, Dir()))
            members.extend(_flatten(node, prefix + name + "/"))
        else:
            assert isinstance(node, tuple)
            data, executable = node
            members.append((prefix + name, File(data, 0o755 if executable else 0o644)))
    return members


def _expected(members: list[tuple[str, File | Dir]]) -> dict[str, object]:
    return {
        name: "dir" if isinstance(member, Dir) else ("file", member.data, member.mode == 0o755)
        for name, member in members
    }


@pytest.mark.parametrize("archive_format", ALL_FORMATS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees)
def test_round_trip(archive_format: ArchiveFormat, tree: dict[str, object]) -> None:
    members = _flatten(tree)
    with tempfile.TemporaryDirectory() as work:
        archive = write_archive(Path(work), members, archive_format)
        dest = Path(work) / "dest"
        dest.mkdir()
        result = extract_file(archive, dest)
        assert snapshot(dest) == _expected(members)
        files = [member for _, member in members if isinstance(member, File)]
        assert result.files == len(files)
        assert result.total_bytes == sum(len(file.data) for file in files)


SAMPLE: list[tuple[str, Member]] = [
    ("pkg/", Dir()),
    ("pkg/bin/", Dir()),
    ("pkg/bin/run", File(b"#!/bin/sh\n", mode=0o755)),
    ("pkg/lib/data.txt", File(b"data")),
    ("pkg/lib/link", Symlink("data.txt")),
    ("pkg/bin/data", Symlink("../lib/data.txt")),
]


@pytest.mark.parametrize("archive_format", ALL_FORMATS)
def test_extracts_every_format(tmp_path: Path, dest: Path, archive_format: ArchiveFormat) -> None:
    archive = write_archive(tmp_path, SAMPLE, archive_format)
    result = extract_file(archive, dest)
    assert result == ExtractResult(files=2, dirs=3, symlinks=2, total_bytes=14)
    assert (dest / "pkg/bin/data").read_bytes() == b"data"
    assert os.readlink(dest / "pkg/lib/link") == "data.txt"
    assert os.access(dest / "pkg/bin/run", os.X_OK)
    assert not os.access(dest / "pkg/lib/data.txt", os.X_OK)


@pytest.mark.parametrize("archive_format", ALL_FORMATS)
def test_keeps_modification_times(
    tmp_path: Path, dest: Path, archive_format: ArchiveFormat
) -> None:
    extract_file(write_archive(tmp_path, {"a": File(b"x")}, archive_format), dest)
    assert abs((dest / "a").stat().st_mtime - MTIME) < 2  # zip stores even seconds


def test_extracts_hard_links(tmp_path: Path, dest: Path) -> None:
    members: dict[str, Member] = {"a/file": File(b"shared"), "b/link": Hardlink("a/file")}
    result = extract_file(write_archive(tmp_path, members, ArchiveFormat.TAR_GZ), dest)
    assert (dest / "b/link").read_bytes() == b"shared"
    assert (dest / "b/link").stat().st_ino == (dest / "a/file").stat().st_ino
    assert result.files == 2


def test_a_later_duplicate_replaces_an_earlier_member(tmp_path: Path, dest: Path) -> None:
    members: Members = [("a", File(b"old")), ("a", File(b"new")), ("d", Dir()), ("d", Symlink("a"))]
    extract_file(write_archive(tmp_path, members, ArchiveFormat.TAR), dest)
    assert (dest / "a").read_bytes() == b"new"
    assert os.readlink(dest / "d") == "a"


def test_a_file_cannot_replace_a_directory_with_content(tmp_path: Path, dest: Path) -> None:
    members: Members = [("d/inner", File(b"x")), ("d", File(b"file"))]
    with pytest.raises(ExtractError, match=r"Failed to extract archive 'archive\.tar'") as caught:
        extract_file(write_archive(tmp_path, members, ArchiveFormat.TAR), dest)
    assert isinstance(caught.value.__cause__, OSError)


def test_writes_through_a_symlinked_directory_that_stays_inside(tmp_path: Path, dest: Path) -> None:
    members: Members = [("real/", Dir()), ("alias", Symlink("real")), ("alias/file", File(b"x"))]
    extract_file(write_archive(tmp_path, members, ArchiveFormat.TAR), dest)
    assert (dest / "real/file").read_bytes() == b"x"


def test_extract_stream_reads_any_reader(dest: Path) -> None:
    data = make_archive(SAMPLE, ArchiveFormat.TAR_XZ)
    result = extract_stream(io.BytesIO(data), dest, format=ArchiveFormat.TAR_XZ, name="s.txz")
    assert result.files == 2


def test_extract_stream_refuses_zip(dest: Path) -> None:
    with pytest.raises(ValueError, match="extract_file"):
        extract_stream(io.BytesIO(b""), dest, format=ArchiveFormat.ZIP, name="x.zip")


def test_extract_file_uses_the_given_format_and_name(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "download.bin"
    path.write_bytes(make_archive(SAMPLE, ArchiveFormat.TAR_BZ2))
    assert extract_file(path, dest, name="pkg.tar.bz2").files == 2
    other = tmp_path / "other"
    other.mkdir()
    assert extract_file(path, other, format=ArchiveFormat.TAR_BZ2).files == 2


def test_extract_file_refuses_an_unknown_format(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "download.bin"
    path.write_bytes(b"not an archive")
    with pytest.raises(ExtractError, match=r"'download\.bin': unknown archive format"):
        extract_file(path, dest)


def test_zstd_archives_of_several_frames(dest: Path) -> None:
    tar = make_tar(SAMPLE)
    frames = compress(tar[:700], ArchiveFormat.TAR_ZST) + compress(tar[700:], ArchiveFormat.TAR_ZST)
    extract_stream(io.BytesIO(frames), dest, format=ArchiveFormat.TAR_ZST, name="x.tar.zst")
    assert (dest / "pkg/lib/data.txt").read_bytes() == b"data"


# strip_components ----------------------------------------------------------------


@pytest.mark.parametrize("archive_format", [ArchiveFormat.TAR_GZ, ArchiveFormat.ZIP])
def test_strip_components(tmp_path: Path, dest: Path, archive_format: ArchiveFormat) -> None:
    members: Members = [
        ("./", Dir()),
        ("./pkg-1.0/", Dir()),
        ("./pkg-1.0/README", File(b"readme")),
        ("./pkg-1.0/src/main.c", File(b"int main;")),
        ("./pkg-1.0/src/link", Symlink("main.c")),
        ("TOPLEVEL", File(b"skipped: nothing is left of its name")),
    ]
    archive = write_archive(tmp_path, members, archive_format)
    result = extract_file(archive, dest, strip_components=1)
    assert snapshot(dest) == {
        "README": ("file", b"readme", False),
        "src": "dir",
        "src/main.c": ("file", b"int main;", False),
        "src/link": ("link", "main.c"),
    }
    assert result.files == 2


def test_strip_components_applies_to_hard_link_targets(tmp_path: Path, dest: Path) -> None:
    members: dict[str, Member] = {"top/a": File(b"x"), "top/b": Hardlink("top/a")}
    extract_file(write_archive(tmp_path, members, ArchiveFormat.TAR), dest, strip_components=1)
    assert (dest / "b").read_bytes() == b"x"


def test_strip_components_deeper_than_the_archive_extracts_nothing(
    tmp_path: Path, dest: Path
) -> None:
    result = extract_file(
        write_archive(tmp_path, SAMPLE, ArchiveFormat.TAR), dest, strip_components=5
    )
    assert result == ExtractResult(files=0, dirs=0, symlinks=0, total_bytes=0)
    assert list(dest.iterdir()) == []


# GrowingFileReader -----------------------------------------------------------------


def _big_sample() -> tuple[list[tuple[str, File]], bytes]:
    rng = random.Random(7)
    members = [
        (f"pkg/d{i % 5}/f{i}", File(rng.randbytes(rng.randrange(0, 40_000)), 0o644))
        for i in range(60)
    ]
    return members, make_archive(members, ArchiveFormat.TAR_GZ)


def _write_in_chunks(
    path: Path, reader: GrowingFileReader, data: bytes, *, stop: int | None = None
) -> None:
    with open(path, "wb") as file:
        for start in range(0, len(data) if stop is None else stop, 4096):
            file.write(data[start : start + 4096])
            file.flush()
            reader.advance(file.tell())


def test_extracts_while_the_file_grows(tmp_path: Path, dest: Path) -> None:
    members, data = _big_sample()
    path = tmp_path / "body.part"
    reader = GrowingFileReader(path)

    def download() -> None:
        try:
            _write_in_chunks(path, reader, data)
        finally:
            reader.finish()

    writer = threading.Thread(target=download)
    writer.start()
    with reader:
        result = extract_stream(reader, dest, format=ArchiveFormat.TAR_GZ, name="pkg.tar.gz")
    writer.join(10)
    assert result.files == 60
    for name, member in members:
        assert (dest / name).read_bytes() == member.data


def test_a_failed_download_fails_the_extraction_with_its_error(tmp_path: Path, dest: Path) -> None:
    _, data = _big_sample()
    path = tmp_path / "body.part"
    reader = GrowingFileReader(path)
    reset = ConnectionResetError(104, "Connection reset by peer")

    def download() -> None:
        _write_in_chunks(path, reader, data, stop=len(data) // 2)
        reader.fail(reset)

    writer = threading.Thread(target=download)
    writer.start()
    with pytest.raises(ExtractError, match=r"Failed to extract archive 'pkg\.tar\.gz'") as caught:
        extract_stream(reader, dest, format=ArchiveFormat.TAR_GZ, name="pkg.tar.gz")
    writer.join(10)
    assert reset in list(chain(caught.value))
    assert not isinstance(caught.value, UnsafeArchiveError)
    assert classify(caught.value).retry  # seen as the network error it is


def test_a_body_cut_short_fails_the_extraction(tmp_path: Path, dest: Path) -> None:
    _, data = _big_sample()
    path = tmp_path / "body.part"
    reader = GrowingFileReader(path)

    def download() -> None:
        _write_in_chunks(path, reader, data, stop=len(data) * 3 // 5)
        reader.finish()

    writer = threading.Thread(target=download)
    writer.start()
    with pytest.raises(ExtractError, match="Failed to extract archive") as caught:
        extract_stream(reader, dest, format=ArchiveFormat.TAR_GZ, name="pkg.tar.gz")
    writer.join(10)
    assert any(isinstance(error, (EOFError, tarfile.ReadError)) for error in chain(caught.value))


def test_a_rewound_download_fails_the_extraction_clearly(tmp_path: Path, dest: Path) -> None:
    _, data = _big_sample()
    path = tmp_path / "body.part"
    reader = GrowingFileReader(path)

    def download() -> None:
        _write_in_chunks(path, reader, data, stop=len(data) // 2)
        reader.rewind()

    writer = threading.Thread(target=download)
    writer.start()
    with pytest.raises(ExtractError) as caught:
        extract_stream(reader, dest, format=ArchiveFormat.TAR_GZ, name="pkg.tar.gz")
    writer.join(10)
    rewound = [error for error in chain(caught.value) if isinstance(error, StreamRewoundError)]
    assert rewound
    assert "restarted from the beginning" in str(rewound[0])


def test_growing_file_reader_returns_what_is_available(tmp_path: Path) -> None:
    path = tmp_path / "body.part"
    path.write_bytes(b"abcdef")
    reader = GrowingFileReader(path)
    reader.advance(4)
    assert reader.read(100) == b"abcd"  # does not wait for a full buffer
    reader.advance(6)
    buffer = bytearray(10)
    assert reader.readinto(buffer) == 2
    assert buffer[:2] == b"ef"
    reader.finish()
    assert reader.read(100) == b""
    assert not reader.seekable()
    reader.close()


def test_growing_file_reader_at_the_end_of_an_empty_download(tmp_path: Path) -> None:
    reader = GrowingFileReader(tmp_path / "never-created")
    reader.finish()
    assert reader.readall() == b""


# Failures ------------------------------------------------------------------------


@pytest.mark.parametrize("archive_format", ALL_FORMATS)
def test_a_truncated_archive_fails(
    tmp_path: Path, dest: Path, archive_format: ArchiveFormat
) -> None:
    members, _ = _big_sample()
    data = make_archive(members, archive_format)
    path = tmp_path / ("cut" + SUFFIXES[archive_format])
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExtractError, match=f"Failed to extract archive '{path.name}'") as caught:
        extract_file(path, dest)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize("archive_format", [f for f in TAR_FORMATS if f is not ArchiveFormat.TAR])
def test_a_compressed_tar_cut_after_its_last_member_fails(
    dest: Path, archive_format: ArchiveFormat
) -> None:
    # Everything the tar holds is there; only the compressed stream's end is missing.
    data = make_archive({"a": File(b"x")}, archive_format)
    with pytest.raises(ExtractError):
        extract_stream(io.BytesIO(data[:-4]), dest, format=archive_format, name="x")


def test_a_plain_tar_cut_between_members_fails(dest: Path) -> None:
    data = make_tar({"a": File(b"x" * 600), "b": File(b"y")})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        second = tar.getmembers()[1].offset
    with pytest.raises(ExtractError) as caught:
        extract_stream(io.BytesIO(data[:second]), dest, format=ArchiveFormat.TAR, name="x.tar")
    assert isinstance(caught.value.__cause__, tarfile.ReadError)


def test_a_plain_tar_cut_inside_a_member_fails(dest: Path) -> None:
    data = make_tar({"a": File(b"x" * 5000), "b": File(b"y")})
    with pytest.raises(ExtractError) as caught:
        extract_stream(io.BytesIO(data[:3000]), dest, format=ArchiveFormat.TAR, name="x.tar")
    assert str(caught.value.__cause__) == "unexpected end of data"


def test_a_sparse_member_is_read_with_its_holes(dest: Path) -> None:
    # GNU sparse format 1.0 (pax): the map leads the data; tarfile reads such a member.
    sparse = tarfile.TarInfo("sparse")
    mapping = b"1\n2\n3\n".ljust(tarfile.BLOCKSIZE, b"\0")
    sparse.size = len(mapping) + 3
    sparse.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "pkg/holes.bin",
        "GNU.sparse.realsize": "8",
    }
    after = tarfile.TarInfo("pkg/after.txt")
    after.size = 2
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(sparse, io.BytesIO(mapping + b"abc"))
        tar.addfile(after, io.BytesIO(b"ok"))
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        assert tar.getmembers()[0].sparse == [(2, 3)]  # the case this test is about
    data = compress(buffer.getvalue(), ArchiveFormat.TAR_GZ)
    result = extract_stream(io.BytesIO(data), dest, format=ArchiveFormat.TAR_GZ, name="s.tgz")
    assert result.files == 2
    assert (dest / "pkg/holes.bin").read_bytes() == b"\0\0abc\0\0\0"
    assert (dest / "pkg/after.txt").read_bytes() == b"ok"


def test_a_corrupt_tar_header_fails(dest: Path) -> None:
    data = bytearray(make_tar({"a": File(b"x" * 600), "b": File(b"y")}))
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        second = tar.getmembers()[1].offset
    data[second : second + 100] = b"\xff" * 100
    with pytest.raises(ExtractError, match="Failed to extract"):
        extract_stream(io.BytesIO(bytes(data)), dest, format=ArchiveFormat.TAR, name="x.tar")


def test_corrupt_compressed_data_fails(tmp_path: Path, dest: Path) -> None:
    members, _ = _big_sample()
    data = bytearray(make_archive(members, ArchiveFormat.TAR_GZ))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path = tmp_path / "corrupt.tar.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ExtractError, match=r"Failed to extract archive 'corrupt\.tar\.gz'"):
        extract_file(path, dest)


def test_an_empty_file_fails(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "empty.tar"
    path.write_bytes(b"")
    with pytest.raises(ExtractError, match=r"Failed to extract archive 'empty\.tar'"):
        extract_file(path, dest)


def test_a_missing_file_fails(tmp_path: Path, dest: Path) -> None:
    with pytest.raises(ExtractError, match="Failed to extract") as caught:
        extract_file(tmp_path / "missing.tar", dest)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_errors_and_the_retry_classifier() -> None:
    assert not hasattr(ExtractError, "surefetch_transient")
    assert UnsafeArchiveError.surefetch_transient is False
    unsafe = UnsafeArchiveError(archive="x.tar", member="../a", reason="escapes the destination")
    assert (
        str(unsafe) == "Refusing to extract archive 'x.tar': member '../a' escapes the destination"
    )
    assert not classify(unsafe).retry


# Limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("archive_format", [ArchiveFormat.TAR_GZ, ArchiveFormat.ZIP])
@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ExtractLimits(max_files=3), "it has more than 3 members"),
        (ExtractLimits(max_total_bytes=10), "the limit of 10 bytes"),
        (
            ExtractLimits(max_member_bytes=5),
            "member 'pkg/bin/run' is 10 bytes, more than the limit",
        ),
    ],
)
def test_limits(
    tmp_path: Path, dest: Path, archive_format: ArchiveFormat, limits: ExtractLimits, message: str
) -> None:
    members: Members = [*SAMPLE[:3], ("pkg/lib/data.txt", File(b"0123456789"))]
    archive = write_archive(tmp_path, [*members, *members], archive_format)
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_file(archive, dest, limits=limits)
