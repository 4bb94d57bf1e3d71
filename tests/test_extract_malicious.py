"""Malicious archives: each is refused (or sanitised), and nothing lands outside dest.

Every test runs in a sandbox: ``dest`` sits next to an ``outside`` directory
holding a ``victim`` file, and after the test the sandbox must hold exactly
those (plus the archives), with the victim untouched.
"""

from __future__ import annotations

import io
import math
import os
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archives import Dir, File, Hardlink, Members, Special, Symlink, write_archive
from surefetch._errors import ExtractError, UnsafeArchiveError
from surefetch._extract.archive import ArchiveFormat, ExtractLimits, ExtractResult, extract_file

TAR, ZIP = ArchiveFormat.TAR_GZ, ArchiveFormat.ZIP
BOTH = [TAR, ZIP]
VICTIM_DATA = b"original"


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.archives = root / "archives"
        self.dest = root / "dest"
        self.outside = root / "outside"
        self.victim = self.outside / "victim"
        for directory in (self.archives, self.dest, self.outside):
            directory.mkdir()
        self.victim.write_bytes(VICTIM_DATA)

    def extract(
        self, members: Members, archive_format: ArchiveFormat, **options: object
    ) -> ExtractResult:
        archive = write_archive(self.archives, members, archive_format)
        return extract_file(archive, self.dest, **options)  # type: ignore[arg-type]

    def refuses(
        self, members: Members, archive_format: ArchiveFormat, reason: str, **options: object
    ) -> UnsafeArchiveError:
        with pytest.raises(UnsafeArchiveError, match=reason) as caught:
            self.extract(members, archive_format, **options)
        assert str(caught.value).startswith("Refusing to extract archive 'archive.")
        return caught.value

    def assert_nothing_outside(self) -> None:
        assert sorted(entry.name for entry in self.root.iterdir()) == [
            "archives",
            "dest",
            "outside",
        ]
        assert os.listdir(self.outside) == ["victim"]
        assert self.victim.read_bytes() == VICTIM_DATA
        assert all(entry.name.startswith("archive.") for entry in self.archives.iterdir())
        assert not (self.root.parent / "evil").exists()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path)
    yield box
    box.assert_nothing_outside()


# Names ---------------------------------------------------------------------------


@pytest.mark.parametrize("archive_format", BOTH)
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil", "member '../evil' escapes the destination"),
        ("../../evil", "escapes the destination"),
        ("../outside/victim", "escapes the destination"),
        ("a/../../evil", "escapes the destination"),
        ("./../evil", "escapes the destination"),
        ("a/../b", "has '..' in its path"),
        ("..\\evil", "escapes the destination"),
        ("a\\..\\..\\evil", "escapes the destination"),
        ("C:/evil", "has an absolute path"),
        ("C:\\evil", "has an absolute path"),
        ("c:evil", "has an absolute path"),
        ("\\evil", "has an absolute path"),
    ],
)
def test_traversal_and_drive_names_are_refused(
    sandbox: Sandbox, archive_format: ArchiveFormat, name: str, reason: str
) -> None:
    sandbox.refuses({"ok": File(b"ok"), name: File(b"pwned")}, archive_format, reason)


@pytest.mark.parametrize("archive_format", BOTH)
def test_absolute_names_are_refused(sandbox: Sandbox, archive_format: ArchiveFormat) -> None:
    for name in (str(sandbox.victim), str(sandbox.root / "evil")):
        sandbox.refuses({name: File(b"pwned")}, archive_format, "has an absolute path")


@pytest.mark.parametrize("archive_format", BOTH)
def test_an_empty_name_is_refused(sandbox: Sandbox, archive_format: ArchiveFormat) -> None:
    sandbox.refuses({"": File(b"x")}, archive_format, "has an empty name")


@pytest.mark.parametrize("archive_format", BOTH)
def test_a_file_as_a_parent_directory_fails(
    sandbox: Sandbox, archive_format: ArchiveFormat
) -> None:
    with pytest.raises(ExtractError, match="Failed to extract") as caught:
        sandbox.extract({"f": File(b"x"), "f/x": File(b"y")}, archive_format)
    assert isinstance(caught.value.__cause__, NotADirectoryError)


# Symlinks --------------------------------------------------------------------------


@pytest.mark.parametrize("archive_format", BOTH)
def test_a_symlink_out_of_dest_is_refused(sandbox: Sandbox, archive_format: ArchiveFormat) -> None:
    members: Members = [("link", Symlink("../outside")), ("link/victim", File(b"pwned"))]
    sandbox.refuses(
        members, archive_format, "member 'link' is a symlink to '../outside', which leads"
    )


@pytest.mark.parametrize("archive_format", BOTH)
def test_an_absolute_symlink_is_refused(sandbox: Sandbox, archive_format: ArchiveFormat) -> None:
    members: Members = [("link", Symlink(str(sandbox.outside))), ("link/victim", File(b"pwned"))]
    sandbox.refuses(members, archive_format, "is a symlink to the absolute path")


@pytest.mark.parametrize("archive_format", BOTH)
@pytest.mark.parametrize(
    ("members", "reason"),
    [
        # The brief's example: "a" climbs out of "b", then a name goes up through "a".
        ([("a", Symlink("b/..")), ("a/../../evil", File(b"x"))], r"'b/\.\.', with '\.\.' after"),
        # Harmless now, but "z" could later become a link to "." and make it escape.
        ([("y", Symlink("z/../outside")), ("z", Symlink("."))], r"with '\.\.' after a name"),
        ([("x", Symlink("sub/deep")), ("y", Symlink("x/../.."))], r"with '\.\.' after a name"),
        # A link made through an earlier link is judged from where it really is.
        ([("d/", Dir()), ("d/up", Symlink("..")), ("d/up/esc", Symlink(".."))], "leads outside"),
        ([("a", Symlink(".")), ("a/b", Symlink("../outside"))], "leads outside"),
        ([("l1", Symlink("l2")), ("l2", Symlink("../outside"))], "member 'l2'.*leads outside"),
        ([("deep/er/", Dir()), ("deep/er/l", Symlink("../../../outside"))], "leads outside"),
    ],
)
def test_symlink_chains_out_of_dest_are_refused(
    sandbox: Sandbox, archive_format: ArchiveFormat, members: Members, reason: str
) -> None:
    sandbox.refuses(members, archive_format, reason)


@pytest.mark.parametrize("archive_format", BOTH)
def test_symlinks_that_stay_inside_are_kept(
    sandbox: Sandbox, archive_format: ArchiveFormat
) -> None:
    members: Members = [
        ("lib/real.so", File(b"elf")),
        ("bin/", Dir()),
        ("bin/tool", Symlink("../lib/real.so")),
        ("here", Symlink(".")),
        ("here/here/file", File(b"through links that stay inside")),
        ("dangling", Symlink("not/yet/there")),
    ]
    sandbox.extract(members, archive_format)
    dest = sandbox.dest
    assert (dest / "bin/tool").read_bytes() == b"elf"
    assert (dest / "file").read_bytes() == b"through links that stay inside"
    assert os.readlink(dest / "dangling") == "not/yet/there"


# Duplicates --------------------------------------------------------------------------


@pytest.mark.parametrize("archive_format", BOTH)
def test_a_duplicate_of_an_outside_link_is_never_written_through(
    sandbox: Sandbox, archive_format: ArchiveFormat
) -> None:
    members: Members = [("x", Symlink(str(sandbox.victim))), ("x", File(b"pwned"))]
    sandbox.refuses(members, archive_format, "is a symlink to the absolute path")


@pytest.mark.parametrize("archive_format", BOTH)
def test_a_duplicate_file_replaces_a_link_instead_of_following_it(
    sandbox: Sandbox, archive_format: ArchiveFormat
) -> None:
    members: Members = [
        ("target", File(b"keep")),
        ("x", Symlink("target")),
        ("x", File(b"new")),
        ("d", Symlink("target")),
        ("d/", Dir()),
        ("d/inside", File(b"in a real directory")),
    ]
    sandbox.extract(members, archive_format)
    dest = sandbox.dest
    assert (dest / "target").read_bytes() == b"keep"
    assert not (dest / "x").is_symlink()
    assert (dest / "x").read_bytes() == b"new"
    assert not (dest / "d").is_symlink()
    assert (dest / "d/inside").is_file()


def test_a_duplicate_file_does_not_write_into_a_hard_link(sandbox: Sandbox) -> None:
    members: Members = [("f", File(b"keep")), ("h", Hardlink("f")), ("h", File(b"new"))]
    sandbox.extract(members, TAR)
    assert (sandbox.dest / "f").read_bytes() == b"keep"
    assert (sandbox.dest / "h").read_bytes() == b"new"


# Hard links ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"h": Hardlink("../outside/victim")}, "hard link to '../outside/victim', which escapes"),
        ({"h": Hardlink("/etc/passwd")}, "which has an absolute path"),
        ({"h": Hardlink("later"), "later": File(b"x")}, "not a regular file extracted before it"),
        ({"d/": Dir(), "h": Hardlink("d")}, "not a regular file extracted before it"),
        ({"s": Symlink("f"), "f": File(b"x"), "h": Hardlink("s")}, "not a regular file"),
        ({"up": Symlink("."), "h": Hardlink("up/../outside/victim")}, r"has '\.\.' in its path"),
    ],
)
def test_hard_links_out_of_dest_are_refused(
    sandbox: Sandbox, members: Members, reason: str
) -> None:
    error = sandbox.refuses(members, TAR, reason)
    assert error.member == "h"


def test_a_hard_link_cannot_reach_outside_through_a_parent(sandbox: Sandbox) -> None:
    absolute = str(sandbox.victim)
    sandbox.refuses({"h": Hardlink(absolute)}, TAR, "has an absolute path")
    # Even a link to the real victim, made by someone else, is not followed.
    os.symlink(sandbox.outside, sandbox.dest / "planted")
    sandbox.refuses({"h": Hardlink("planted/victim")}, TAR, "not a regular file extracted")
    (sandbox.dest / "planted").unlink()


# Special members and modes ---------------------------------------------------------------


@pytest.mark.parametrize("archive_format", BOTH)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (tarfile.CHRTYPE, "member 'node' is a device node"),
        (tarfile.BLKTYPE, "member 'node' is a device node"),
        (tarfile.FIFOTYPE, "member 'node' is a FIFO"),
    ],
)
def test_special_members_are_refused(
    sandbox: Sandbox, archive_format: ArchiveFormat, kind: bytes, reason: str
) -> None:
    sandbox.refuses({"node": Special(kind)}, archive_format, reason)
    assert not (sandbox.dest / "node").exists()


@pytest.mark.parametrize("archive_format", BOTH)
def test_setuid_setgid_and_sticky_bits_are_dropped(
    sandbox: Sandbox, archive_format: ArchiveFormat
) -> None:
    members: dict[str, File] = {
        "suid": File(b"x", 0o4755),
        "sgid": File(b"x", 0o2755),
        "sticky": File(b"x", 0o1644),
    }
    sandbox.extract(members, archive_format)
    for name in members:
        mode = (sandbox.dest / name).stat().st_mode
        assert mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX) == 0, name
    assert (sandbox.dest / "suid").stat().st_mode & stat.S_IXUSR
    assert not (sandbox.dest / "sticky").stat().st_mode & stat.S_IXUSR


@pytest.mark.parametrize("archive_format", BOTH)
def test_unreadable_modes_still_give_the_owner_read_and_write(
    sandbox: Sandbox, archive_format: ArchiveFormat
) -> None:
    sandbox.extract({"locked": File(b"x", 0o000)}, archive_format)
    assert stat.S_IMODE((sandbox.dest / "locked").stat().st_mode) & 0o600 == 0o600


# Bombs -------------------------------------------------------------------------------------

ZEROS = bytes(24 << 20)  # deflates about 1000 to 1


@pytest.mark.parametrize(
    "archive_format", [ArchiveFormat.TAR_GZ, ArchiveFormat.TAR_ZST, ArchiveFormat.ZIP]
)
def test_a_decompression_bomb_is_refused(sandbox: Sandbox, archive_format: ArchiveFormat) -> None:
    error = sandbox.refuses(
        {"zeros": File(ZEROS)}, archive_format, "more than 200 times its compressed size"
    )
    assert "decompression bomb" in str(error)
    # Stopped early: not the whole member was written.
    assert (sandbox.dest / "zeros").stat().st_size < len(ZEROS)


def test_a_higher_ratio_limit_lets_a_compressible_archive_through(sandbox: Sandbox) -> None:
    limits = ExtractLimits(max_ratio=100_000)
    assert sandbox.extract({"zeros": File(ZEROS)}, ZIP, limits=limits).total_bytes == len(ZEROS)


@pytest.mark.parametrize("archive_format", BOTH)
def test_too_many_members_are_refused(sandbox: Sandbox, archive_format: ArchiveFormat) -> None:
    members: Members = {f"f{i}": File() for i in range(20)}
    sandbox.refuses(
        members, archive_format, "it has more than 10 members", limits=ExtractLimits(max_files=10)
    )


# Times ----------------------------------------------------------------------------------


def _tar_with_mtimes(path: Path, mtimes: dict[str, str]) -> None:
    """A tar whose members' times come from pax headers, written as given."""
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, mtime in mtimes.items():
            member = tarfile.TarInfo(name)
            member.size = len(name)
            member.pax_headers = {"mtime": mtime}
            archive.addfile(member, io.BytesIO(name.encode()))


def test_absurd_pax_mtimes_are_clamped_not_fatal(sandbox: Sandbox) -> None:
    archive = sandbox.archives / "archive.tar"
    _tar_with_mtimes(
        archive, {"future": "1e400", "past": "-1e400", "nan": "nan", "fine": "1700000000.5"}
    )
    before = time.time()
    assert extract_file(archive, sandbox.dest).files == 4
    times = {name: (sandbox.dest / name).stat().st_mtime for name in os.listdir(sandbox.dest)}
    assert all(math.isfinite(t) for t in times.values())
    assert times["future"] > 4_102_444_800  # after 2100, as far as the filesystem allows
    assert times["past"] < 0  # before 1970, as far as the filesystem allows
    assert times["nan"] >= before - 2  # no time at all: the file keeps when it was written
    assert times["fine"] == 1_700_000_000.5
    for name in times:
        assert (sandbox.dest / name).read_bytes() == name.encode()


def test_a_huge_base_256_mtime_is_clamped_not_fatal(sandbox: Sandbox) -> None:
    archive = sandbox.archives / "archive.tar"
    with tarfile.open(archive, mode="w", format=tarfile.GNU_FORMAT) as tar:
        member = tarfile.TarInfo("far")
        member.size, member.mtime = 1, 2**80  # GNU tar writes it in base 256
        tar.addfile(member, io.BytesIO(b"x"))
    extract_file(archive, sandbox.dest)
    assert math.isfinite((sandbox.dest / "far").stat().st_mtime)
