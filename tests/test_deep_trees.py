"""Trees of absurd depth: refused when an archive asks for one, removed whatever the depth.

A tar.gz of 2,500 nested directories takes under 200 bytes. Removing such a
tree recursively stops at Python's recursion limit, and its paths outgrow
PATH_MAX (4096 bytes on Linux), so every removal of ours must walk
iteratively and relative to open directories. The trees here are made on
disk by the tests themselves, one level at a time relative to the level
above (a path would be too long), and taken away afterwards by ``rm -rf``,
which is iterative, whatever the code under test did.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from archives import Dir, File, Symlink, make_archive
from surefetch import fs
from surefetch._errors import UnsafeArchiveError
from surefetch._extract.archive import ArchiveFormat, ExtractLimits, extract_file
from surefetch.cache import BUCKET_ARCHIVES, Cache
from surefetch.testing import ChaosServer, no_wait

pytestmark = pytest.mark.skipif(
    not (os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd),
    reason="making a tree deeper than PATH_MAX needs mkdir relative to a directory (POSIX)",
)

DEEP = 2_500
KEY = "ab" * 16


def deep_tar_gz(depth: int = DEEP) -> bytes:
    """One directory member ``d/d/.../d/``, ``depth`` levels deep, as a tiny tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        member = tarfile.TarInfo("d/" * depth)
        member.type = tarfile.DIRTYPE
        archive.addfile(member)
    return gzip.compress(buffer.getvalue(), mtime=0)


def make_deep_tree(root: Path, *, depth: int = DEEP, victim: Path | None = None) -> None:
    """``root/d/d/.../d`` ``depth`` levels deep, with a file at every 500th level and, at
    the bottom, a file and a symlink to ``victim`` (which must survive any removal)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
            if level % 500 == 0:
                made = os.open("data", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(made, b"x" * 100)
                os.close(made)
        if victim is not None:
            os.symlink(victim, "link", dir_fd=fd)
    finally:
        os.close(fd)


def depth_of(root: Path) -> int:
    """How many levels of ``d`` are under ``root``, walking relative to open directories."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:
        while "d" in os.listdir(fd):
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = below, depth + 1
    finally:
        os.close(fd)
    return depth


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, emptied by ``rm -rf`` afterwards: pytest's own cleanup recurses."""
    yield tmp_path
    for item in tmp_path.iterdir():
        subprocess.run(["rm", "-rf", "--", str(item)], check=True)


@pytest.fixture
def victim(scratch: Path) -> Path:
    outside = scratch / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    return outside


def assert_victim_intact(victim: Path) -> None:
    assert os.listdir(victim) == ["precious"]
    assert (victim / "precious").read_text() == "keep"


# --- removal ------------------------------------------------------------------------


def test_remove_tree_removes_a_tree_2500_levels_deep(scratch: Path, victim: Path) -> None:
    tree = scratch / "tree"
    tree.mkdir()
    make_deep_tree(tree, victim=victim)
    assert depth_of(tree) == DEEP
    fs.remove_tree(tree)
    assert not tree.exists()
    assert_victim_intact(victim)


def test_remove_tree_async_removes_a_tree_2500_levels_deep(scratch: Path, victim: Path) -> None:
    tree = scratch / "tree"
    tree.mkdir()
    make_deep_tree(tree, victim=victim)
    asyncio.run(fs.remove_tree_async(tree))
    assert not tree.exists()
    assert_victim_intact(victim)


def test_remove_tree_removes_links_and_never_what_they_point_to(
    scratch: Path, victim: Path
) -> None:
    tree = scratch / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "to-dir").symlink_to(victim, target_is_directory=True)
    (tree / "sub" / "to-file").symlink_to(victim / "precious")
    (tree / "dangling").symlink_to(scratch / "nowhere")
    top_link = scratch / "top-link"
    top_link.symlink_to(victim, target_is_directory=True)
    fs.remove_tree(tree)
    fs.remove_tree(top_link)
    assert not tree.exists() and not os.path.lexists(top_link)
    assert_victim_intact(victim)


def test_remove_tree_copes_with_many_entries_per_level(scratch: Path) -> None:
    tree = scratch / "wide"
    for i in range(30):
        branch = tree / f"b{i}"
        (branch / "x" / "y").mkdir(parents=True)
        for j in range(20):
            (branch / f"f{j}").write_bytes(b"z")
            (branch / "x" / "y" / f"g{j}").write_bytes(b"z")
    fs.remove_tree(tree)
    assert not tree.exists()


# --- extraction -----------------------------------------------------------------------


def test_a_tiny_tar_gz_of_2500_nested_directories_is_refused_before_it_writes(
    scratch: Path,
) -> None:
    data = deep_tar_gz()
    assert len(data) < 300
    archive = scratch / "deep.tar.gz"
    archive.write_bytes(data)
    dest = scratch / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="deeper than the limit of 256"):
        extract_file(archive, dest)
    assert os.listdir(dest) == []


@pytest.mark.parametrize("archive_format", [ArchiveFormat.TAR_GZ, ArchiveFormat.ZIP])
def test_max_depth_is_a_limit_of_its_own(scratch: Path, archive_format: ArchiveFormat) -> None:
    limits = ExtractLimits(max_depth=3)
    for dest in ("one", "two", "three"):
        (scratch / dest).mkdir()
    ok = scratch / "ok.bin"
    ok.write_bytes(make_archive({"a/b/c": File(b"three"), "a/b/d/": Dir()}, archive_format))
    extract_file(ok, scratch / "one", format=archive_format, limits=limits)
    assert (scratch / "one" / "a" / "b" / "c").read_bytes() == b"three"
    deep = scratch / "deep.bin"
    deep.write_bytes(make_archive({"a/b/c/d": File(b"four")}, archive_format))
    with pytest.raises(UnsafeArchiveError, match="member 'a/b/c/d' is 4 levels deep"):
        extract_file(deep, scratch / "two", format=archive_format, limits=limits)
    assert not (scratch / "two" / "a").exists()
    # strip_components takes levels away before they are counted: what lands on disk counts.
    extract_file(deep, scratch / "three", format=archive_format, limits=limits, strip_components=1)
    assert (scratch / "three" / "b" / "c" / "d").read_bytes() == b"four"


def test_depth_gained_through_a_symlink_counts(scratch: Path) -> None:
    """``deep/`` is 3 levels down; ``short/x`` lands 4 levels down through the link."""
    members = {"a/b/deep/": Dir(), "short": Symlink("a/b/deep"), "short/x": File(b"x")}
    archive = scratch / "linked.tar"
    archive.write_bytes(make_archive(members, ArchiveFormat.TAR))
    (scratch / "out").mkdir()
    with pytest.raises(UnsafeArchiveError, match="member 'short/x' is 4 levels deep"):
        extract_file(archive, scratch / "out", limits=ExtractLimits(max_depth=3))
    assert not (scratch / "out" / "a" / "b" / "deep" / "x").exists()


def test_fetch_extract_of_the_deep_archive_fails_cleanly_and_leaves_nothing(
    scratch: Path,
) -> None:
    with ChaosServer(files={"/deep.tar.gz": deep_tar_gz()}) as server:
        command = [
            sys.executable,
            "-m",
            "surefetch",
            "fetch",
            server.url("/deep.tar.gz"),
            "--extract",
            str(scratch / "out"),
            "--cache-dir",
            str(scratch / "cache"),
        ]
        env = {**os.environ, "SUREFETCH_NO_RETRY_DELAY": "1"}
        for _ in range(2):  # the second run extracts from the cached archive
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
            assert done.returncode == 1, done.stderr
            assert done.stderr.startswith("error: Refusing to extract archive 'deep.tar.gz'")
            assert "deeper than the limit of 256" in done.stderr
            assert "Traceback" not in done.stderr
            assert sorted(os.listdir(scratch)) == ["cache"]
        with no_wait(), pytest.raises(UnsafeArchiveError, match="deeper than the limit"):
            surefetch.fetch(server.url("/deep.tar.gz"), extract=True, cache=scratch / "cache")
    assert not list((scratch / "cache").glob("archives-v1/*/*"))
    assert os.listdir(scratch / "cache" / "tmp") == ["partial"]


# --- the cache's own removals ------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUREFETCH_NO_RETRY_DELAY": "1"}
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def deep_temporary(cache: Cache, victim: Path) -> Path:
    """What a writer killed mid-extraction leaves: a deep tree in the temporary area."""
    cache.prepare()
    temporary = cache.tmp_dir / f"archives-v1~{KEY}~killed"
    temporary.mkdir()
    make_deep_tree(temporary, victim=victim)
    return temporary


def test_cache_prune_removes_a_tree_2500_levels_deep(scratch: Path, victim: Path) -> None:
    cache = Cache(scratch / "cache")
    temporary = deep_temporary(cache, victim)
    info = cli("cache", "info", "--cache-dir", str(cache.root))
    assert info.returncode == 0, info.stderr
    done = cli("cache", "prune", "--cache-dir", str(cache.root), "--older-than", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Removed 1 leftover item ")
    assert not temporary.exists()
    assert_victim_intact(victim)


def test_cache_clean_removes_trees_2500_levels_deep(scratch: Path, victim: Path) -> None:
    cache = Cache(scratch / "cache")
    temporary = deep_temporary(cache, victim)
    # An entry whose tree is as deep (made by hand: extraction refuses such trees).
    entry = cache.root / "archives-v1" / KEY[:2] / KEY
    (entry / "tree").mkdir(parents=True)
    (entry / "entry.json").write_text("{}")
    make_deep_tree(entry / "tree", victim=victim)
    assert cache.lookup(BUCKET_ARCHIVES, KEY) is None  # unreadable: not an entry for readers
    done = cli("cache", "clean", "--cache-dir", str(cache.root))
    assert done.returncode == 0, done.stderr
    assert not temporary.exists() and not entry.exists()
    assert sorted(os.listdir(cache.tmp_dir)) == ["partial"]
    assert_victim_intact(victim)


def _read_only_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "f").write_text("x")
    (tree / "a" / "b" / "g").write_text("y")
    for directory in (tree / "a" / "b", tree / "a"):
        directory.chmod(0o555)  # as `chmod -R a-w` leaves a tree (a Go module cache does)
    return tree


def _remove_as(uid: int | None, tree: Path) -> int:
    """Remove ``tree`` in a child process running as ``uid`` (None: as we are); its exit code.

    Root may delete anything, so the read-only case is only real for another user:
    the child drops to that user after forking, with the code already loaded.
    """
    fs.remove_tree(tree.parent / "warm-up")  # loads what remove_tree imports lazily
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            if uid is not None:
                os.setgid(uid)
                os.setuid(uid)
            fs.remove_tree(tree, policy=surefetch.fs.fs_policy(window=0.5))
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="drops privileges in a forked child (POSIX)")
def test_remove_tree_removes_read_only_directories_of_its_owner(scratch: Path) -> None:
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody").pw_uid
        # A home for the tree that the unprivileged user owns and can reach.
        home = Path(tempfile.mkdtemp(prefix="surefetch-test-"))
        try:
            os.chmod(home, 0o755)
            tree = _read_only_tree(home)
            for path in [home, *home.rglob("*")]:
                os.lchown(path, nobody, nobody)
            assert _remove_as(nobody, tree) == 0
            assert not tree.exists()
        finally:
            subprocess.run(["rm", "-rf", "--", str(home)], check=True)
    else:
        tree = _read_only_tree(scratch)
        assert _remove_as(None, tree) == 0
        assert not tree.exists()
