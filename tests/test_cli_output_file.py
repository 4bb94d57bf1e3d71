"""`surefetch fetch -o PATH`: what is at PATH decides how the file gets there.

Nothing (or a regular file) is replaced atomically: a temporary file in the
same directory, renamed over it. Anything else is not ours to destroy: a
device, a FIFO or a socket is written through by opening it, as ``curl -o``
does, and a symbolic link is followed to what it points to. Missing parent
directories are a usage error unless ``--create-dirs`` asks for them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch._cli.main import main
from surefetch.testing import ChaosServer

DATA = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(DATA).hexdigest()

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a device node (os.mknod) needs root",
)
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("SUREFETCH_HTTP_RETRIES", "SUREFETCH_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA}) as chaos:
        yield chaos


@pytest.fixture
def umask() -> Iterator[None]:
    """Put the process's umask back after a test that sets it."""
    old = os.umask(0o022)
    os.umask(old)
    try:
        yield
    finally:
        os.umask(old)


def fetch(server: ChaosServer, *args: str) -> int:
    return main(["fetch", server.url("/data.bin"), *args])


def test_a_new_file_is_written_and_its_path_printed(
    server: ChaosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "copy.bin"
    assert fetch(server, "-o", str(target)) == 0
    assert target.read_bytes() == DATA
    assert capsys.readouterr().out.strip() == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "copy.bin"]  # no leftovers


def test_an_existing_regular_file_is_replaced_atomically_keeping_its_mode(
    server: ChaosServer, tmp_path: Path
) -> None:
    target = tmp_path / "tool"
    target.write_bytes(b"old contents")
    target.chmod(0o750)
    before = target.stat().st_ino
    assert fetch(server, "-o", str(target)) == 0
    assert target.read_bytes() == DATA
    # A rename, not a rewrite in place: a reader of the old file never saw half of the new one.
    assert target.stat().st_ino != before
    assert stat.S_IMODE(target.stat().st_mode) == 0o750  # as curl and cp keep it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "tool"]


@pytest.mark.parametrize(("mask", "mode"), [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_a_new_file_honours_the_umask(
    server: ChaosServer, tmp_path: Path, umask: None, mask: int, mode: int
) -> None:
    target = tmp_path / "copy.bin"
    os.umask(mask)
    assert fetch(server, "-o", str(target)) == 0
    assert stat.S_IMODE(target.stat().st_mode) == mode


@needs_root
def test_a_device_node_is_written_through_not_replaced(server: ChaosServer, tmp_path: Path) -> None:
    # A private twin of /dev/null (char 1:3), made for the test; the system's /dev is never touched.
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert fetch(server, "-o", str(null)) == 0
    after = os.lstat(null)
    assert stat.S_ISCHR(after.st_mode), "the device node was replaced by a regular file"
    assert after.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "null"]


@needs_root
def test_a_symlink_to_a_device_is_written_through(server: ChaosServer, tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    link = tmp_path / "out"
    link.symlink_to(null)
    assert fetch(server, "-o", str(link)) == 0
    assert link.is_symlink() and stat.S_ISCHR(os.lstat(null).st_mode)


@needs_fifo
def test_a_fifo_is_written_through_to_its_reader(server: ChaosServer, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # The reader is another process: opening a FIFO for writing waits for one.
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import hashlib, sys; "
            "print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
            str(fifo),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fetch(server, "-o", str(fifo)) == 0
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
        out, _ = reader.communicate(timeout=60)
        assert out.strip() == SHA
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


def test_a_symlink_is_followed_and_its_target_replaced(server: ChaosServer, tmp_path: Path) -> None:
    # Like curl, -o writes where the link points; the link itself stays.
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "file.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    assert fetch(server, "-o", str(link)) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == DATA
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["file.bin"]


def test_a_dangling_symlink_gets_its_target_created(server: ChaosServer, tmp_path: Path) -> None:
    real = tmp_path / "real.bin"
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    assert fetch(server, "-o", str(link)) == 0
    assert link.is_symlink() and real.read_bytes() == DATA


def test_a_directory_receives_the_file_inside(server: ChaosServer, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    assert fetch(server, "-o", str(folder)) == 0
    assert (folder / "data.bin").read_bytes() == DATA


def test_missing_parent_directories_are_a_usage_error(
    server: ChaosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "typo" / "deeper" / "copy.bin"
    assert fetch(server, "-o", str(target)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(tmp_path / "typo" / "deeper") in err and "--create-dirs" in err
    assert not (tmp_path / "typo").exists()
    assert server.request_count() == 0  # checked before downloading


def test_create_dirs_makes_the_missing_parents(server: ChaosServer, tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "copy.bin"
    assert fetch(server, "-o", str(target), "--create-dirs") == 0
    assert target.read_bytes() == DATA


def test_a_parent_that_is_a_file_is_a_usage_error(
    server: ChaosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_bytes(b"")
    assert fetch(server, "-o", str(tmp_path / "plain" / "copy.bin"), "--create-dirs") == 2
    assert "not a directory" in capsys.readouterr().err


def test_extract_into_a_missing_parent_is_a_usage_error_too(
    server: ChaosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "typo" / "tree"
    assert fetch(server, "--extract", str(target)) == 2
    assert "--create-dirs" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    assert server.request_count() == 0
