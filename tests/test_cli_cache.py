"""`surefetch cache ...`: output, exit codes and error messages."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import surefetch
from surefetch._cli.main import main
from surefetch.cache import BUCKET_ARCHIVES, BUCKET_DOWNLOADS, Cache, Entry, EntryMeta
from surefetch.testing._fs_faults import inject_fs_faults

SRC = str(Path(surefetch.__file__).resolve().parents[1])


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SUREFETCH_LOCK_TIMEOUT", raising=False)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def store(cache: Cache, key: str, data: bytes, bucket: str = BUCKET_DOWNLOADS) -> Entry:
    with cache.lock(bucket, key), cache.temp_dir(bucket, key) as work:
        (work / "f.bin").write_bytes(data)
        meta = EntryMeta(
            url="https://example.org/f.bin",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created=time.time(),
        )
        return cache.commit_file(bucket, key, work / "f.bin", filename="f.bin", meta=meta)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dir_prints_the_root_from_the_variable_or_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "cache", "dir") == (0, f"{tmp_path / 'cache'}\n", "")
    other = tmp_path / "other"
    assert run(capsys, "cache", "dir", "--cache-dir", str(other)) == (0, f"{other}\n", "")
    assert run(capsys, "cache", "--cache-dir", str(other), "dir") == (0, f"{other}\n", "")
    assert not other.exists()


def test_cache_without_a_command_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "cache")
    assert code == 2
    assert "verify" in out
    assert "--cache-dir" in out


def test_info_shows_entries_and_sizes_per_bucket(
    capsys: pytest.CaptureFixture[str], cache: Cache
) -> None:
    store(cache, "a1" * 16, b"x" * 2048)
    store(cache, "a2" * 16, b"y")
    store(cache, "a3" * 16, b"z", bucket=BUCKET_ARCHIVES)
    code, out, err = run(capsys, "cache", "info")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Cache directory: {cache.root}"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["downloads"][0] == "2"
    assert rows["downloads"][2] == "KiB"
    assert rows["archives"][0] == "1"
    assert rows["total"][0] == "3"


def test_verify_exits_0_when_sound_and_1_when_not(
    capsys: pytest.CaptureFixture[str], cache: Cache
) -> None:
    store(cache, "a1" * 16, b"good")
    bad = store(cache, "a2" * 16, b"good")
    assert run(capsys, "cache", "verify") == (0, "Checked 2 entries: all sound.\n", "")

    bad.path.write_bytes(b"evil")
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1
    assert f"corrupt: {bad.path.parent.parent}: the file's sha256 is" in out
    assert "1 corrupt; `surefetch cache verify --fix` removes them." in out
    assert bad.path.exists()

    code, out, _ = run(capsys, "cache", "verify", "--fix")
    assert code == 1
    assert "1 corrupt, 1 removed." in out
    assert not bad.path.exists()
    assert run(capsys, "cache", "verify")[0] == 0


def test_prune_reports_what_it_removed(capsys: pytest.CaptureFixture[str], cache: Cache) -> None:
    cache.partial_path(BUCKET_DOWNLOADS, "a1" * 16).write_bytes(b"x" * 10)
    code, out, _ = run(capsys, "cache", "prune", "--older-than", "0")
    assert code == 0
    assert out == f"Removed 1 leftover item (10 B) from {cache.root}.\n"
    assert run(capsys, "cache", "prune", "--older-than", "-1")[0] == 2


def test_clean_empties_the_cache(capsys: pytest.CaptureFixture[str], cache: Cache) -> None:
    store(cache, "a1" * 16, b"x")
    store(cache, "a2" * 16, b"y")
    code, out, _ = run(capsys, "cache", "clean")
    assert code == 0
    assert out.startswith("Removed 2 entries (")
    assert cache.info().entries == 0


def test_an_invalid_lock_timeout_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", "soon")
    code, out, err = run(capsys, "cache", "clean")
    assert code == 2
    assert out == ""
    assert err.startswith("error: SUREFETCH_LOCK_TIMEOUT='soon' is not valid")
    assert "Traceback" not in err


def test_a_failure_prints_error_and_its_causes_without_a_traceback(
    capsys: pytest.CaptureFixture[str], cache: Cache
) -> None:
    store(cache, "a1" * 16, b"x")
    denied = PermissionError(errno.EACCES, "Access is denied")
    with inject_fs_faults(operation="rename", error=denied, times=10_000):
        code, _, err = run(capsys, "cache", "clean")
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith("error: Rename failed after ")
    assert lines[1].startswith("  Caused by: [Errno 13] Access is denied: ")
    assert "Traceback" not in err
    assert cache.info().entries == 1


def test_a_held_lock_past_the_timeout_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", "0")
    with cache.lock(BUCKET_DOWNLOADS, "a1" * 16):
        code, _, err = run(capsys, "cache", "clean")
    assert code == 1
    assert err.startswith("error: Timed out after 0s waiting for another process to finish")
    assert "SUREFETCH_LOCK_TIMEOUT" in err


def test_verbose_shows_every_retry(capsys: pytest.CaptureFixture[str], cache: Cache) -> None:
    store(cache, "a1" * 16, b"x")
    denied = PermissionError(errno.EPERM, "Operation not permitted")
    with inject_fs_faults(operation="rename", error=denied, times=2):
        code, _, err = run(capsys, "cache", "clean", "-v")
    assert code == 0
    retries = [line for line in err.splitlines() if line.startswith("Retrying rename from ")]
    assert len(retries) == 2
    assert retries[0].endswith(": [Errno 1] Operation not permitted")
    assert logging.getLogger("surefetch").handlers == []


def cli(*argv: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "SUREFETCH_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_module_runs_as_a_program(cache: Cache) -> None:
    result = cli("cache", "dir", cache_dir=cache.root)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{cache.root}\n", "")

    entry = store(cache, "a1" * 16, b"good")
    assert cli("cache", "verify", cache_dir=cache.root).returncode == 0
    entry.path.write_bytes(b"evil")
    result = cli("cache", "verify", cache_dir=cache.root)
    assert result.returncode == 1
    assert "corrupt:" in result.stdout
    assert result.stderr == ""


MAINTENANCE = ["info", "verify", "prune", "clean"]


@pytest.mark.parametrize("command", MAINTENANCE)
def test_a_missing_cache_directory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    # A mistyped --cache-dir must not pass verification, or "clean" a cache
    # that is not there.
    typo = tmp_path / "cahce"
    code, out, err = run(capsys, "cache", command, "--cache-dir", str(typo))
    assert (code, out) == (2, "")
    assert err == f"error: No cache at {typo}: the directory does not exist\n"
    assert not typo.exists()


@pytest.mark.parametrize("command", MAINTENANCE)
def test_a_missing_cache_directory_from_the_environment_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    code, _, err = run(capsys, "cache", command)  # SUREFETCH_CACHE_DIR: tmp_path / "cache"
    assert code == 2
    assert err == f"error: No cache at {tmp_path / 'cache'}: the directory does not exist\n"


@pytest.mark.parametrize("command", MAINTENANCE)
def test_a_directory_that_holds_no_cache_is_left_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    # `cache clean --cache-dir ~` must not tag a home directory as a cache
    # (backup tools skip a tagged directory) or answer for a cache not there.
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "cache", command, "--cache-dir", str(home))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: No cache at {home}: ")
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


def test_a_file_as_the_cache_directory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, "cache", "verify", "--cache-dir", str(tmp_path / "file"))
    assert code == 2
    assert err == f"error: No cache at {tmp_path / 'file'}: it is not a directory\n"


@pytest.mark.parametrize("command", MAINTENANCE)
def test_an_empty_directory_is_an_empty_cache(
    capsys: pytest.CaptureFixture[str], cache: Cache, command: str
) -> None:
    cache.root.mkdir()
    assert run(capsys, "cache", command)[0] == 0
