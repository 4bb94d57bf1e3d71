"""surefetch.fs: spurious filesystem errors are retried, visibly, and nothing is lost."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import surefetch
from fsync_calls import counting_fsync
from surefetch import fs
from surefetch._fs import faults as _seam
from surefetch.testing._fs_faults import inject_fs_faults

EPERM = PermissionError(errno.EPERM, "Operation not permitted")
ACCESS_DENIED = PermissionError(errno.EACCES, "Access is denied")


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    caplog.set_level(logging.INFO, logger="surefetch")


def retry_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "surefetch" and record.getMessage().startswith("Retrying ")
    ]


def windows_error(winerror: int, strerror: str, number: int = errno.EACCES) -> OSError:
    """An OSError as Windows raises it; the winerror argument is honoured only on Windows."""
    error = OSError(number, strerror)
    error.winerror = winerror  # type: ignore[attr-defined]
    return error


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.txt"
    path.write_text("payload")
    return path


# --- rename: the acceptance cases ---------------------------------------------------


@pytest.mark.parametrize("failures", [1, 3, 5])
def test_spurious_failures_below_the_budget_succeed_and_log_each_retry(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture, failures: int
) -> None:
    target = tmp_path / "target.txt"
    with inject_fs_faults(operation="rename", error=EPERM, times=failures) as faults:
        fs.rename(source, target)

    assert faults.raised == failures
    assert target.read_text() == "payload"
    assert not source.exists()
    messages = retry_messages(caplog)
    assert len(messages) == failures
    pattern = (
        rf"Retrying rename from {re.escape(str(source))} to {re.escape(str(target))} "
        r"after \d+\.\d\ds \(retry 1 of \d+\): \[Errno 1\] Operation not permitted"
    )
    assert re.fullmatch(pattern, messages[0]), messages[0]


def test_failures_beyond_the_window_raise_retries_exhausted_and_keep_the_source(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "target.txt"
    with (
        inject_fs_faults(operation="rename", error=ACCESS_DENIED, times=10_000) as faults,
        pytest.raises(surefetch.RetriesExhausted) as caught,
    ):
        fs.rename(source, target)

    error = caught.value
    assert re.fullmatch(r"Rename failed after \d+ retries in \d+\.\ds", str(error))
    assert error.retries == len(retry_messages(caplog)) == faults.raised - 1
    assert error.elapsed <= fs.DEFAULT_WINDOW
    cause = error.__cause__
    assert isinstance(cause, PermissionError)
    assert cause.filename == str(source)
    assert cause.filename2 == str(target)
    assert source.read_text() == "payload"
    assert not target.exists()


def test_the_window_is_configurable_and_a_short_one_fails_promptly(
    tmp_path: Path, source: Path
) -> None:
    def exhaust(policy: surefetch.RetryPolicy | None) -> surefetch.RetriesExhausted:
        with (
            inject_fs_faults(operation="rename", error=ACCESS_DENIED, times=10_000),
            pytest.raises(surefetch.RetriesExhausted) as caught,
        ):
            fs.rename(source, tmp_path / "target", policy=policy)
        return caught.value

    short = exhaust(fs.fs_policy(window=0.3))
    default = exhaust(None)
    assert short.elapsed <= 0.3
    assert short.retries < default.retries
    assert source.exists()


def test_an_error_that_is_not_spurious_fails_at_once_as_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(FileNotFoundError):
        fs.rename(tmp_path / "missing", tmp_path / "target")
    assert retry_messages(caplog) == []


def test_fs_retries_draw_on_their_own_budget_inside_a_network_retry_loop(
    tmp_path: Path, source: Path
) -> None:
    # The outer loop allows one retry; the rename's four retries must not spend it.
    for attempt in surefetch.retrying(retries=1):
        with attempt, inject_fs_faults(operation="rename", error=ACCESS_DENIED, times=4):
            fs.rename(source, tmp_path / "target")
    assert (tmp_path / "target").read_text() == "payload"


# --- what is spurious ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("winerror", "strerror"),
    [
        (5, "Access is denied"),
        (32, "The process cannot access the file because it is being used by another process"),
        (33, "The process cannot access the file because another process has locked a portion"),
    ],
)
def test_windows_errors_5_32_33_are_retried(
    tmp_path: Path,
    source: Path,
    caplog: pytest.LogCaptureFixture,
    winerror: int,
    strerror: str,
) -> None:
    # permission_errors=False: the Windows error number alone must make it spurious.
    policy = fs.fs_policy(permission_errors=False)
    error = windows_error(winerror, strerror)
    with inject_fs_faults(operation="rename", error=error, times=2):
        fs.rename(source, tmp_path / "target", policy=policy)
    messages = retry_messages(caplog)
    assert len(messages) == 2
    assert messages[0].endswith(f": [WinError {winerror}] {strerror}")


def test_other_windows_errors_are_fatal(tmp_path: Path, source: Path) -> None:
    error = windows_error(2, "The system cannot find the file specified", errno.ENOENT)
    with (
        inject_fs_faults(operation="rename", error=error, times=1),
        pytest.raises(OSError, match="cannot find") as caught,
    ):
        fs.rename(source, tmp_path / "target", policy=fs.fs_policy(permission_errors=False))
    assert caught.value.winerror == 2  # type: ignore[attr-defined]
    assert source.exists()


@pytest.mark.parametrize("name", ["EBUSY", "ETXTBSY", "ESTALE"])
def test_busy_and_stale_errnos_are_retried(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    number = getattr(errno, name)
    with inject_fs_faults(operation="rename", error=OSError(number, os.strerror(number)), times=2):
        fs.rename(source, tmp_path / "target")
    assert len(retry_messages(caplog)) == 2


@pytest.mark.parametrize("name", ["ENOENT", "EEXIST", "ENOSPC", "EXDEV"])
def test_other_errnos_are_fatal(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    number = getattr(errno, name)
    with (
        inject_fs_faults(operation="rename", error=OSError(number, os.strerror(number))),
        pytest.raises(OSError, match=re.escape(os.strerror(number))) as caught,
    ):
        fs.rename(source, tmp_path / "target")
    assert caught.value.errno == number
    assert not isinstance(caught.value, surefetch.RetriesExhausted)
    assert retry_messages(caplog) == []


def test_permission_errors_can_be_made_fatal(tmp_path: Path, source: Path) -> None:
    with (
        inject_fs_faults(operation="rename", error=ACCESS_DENIED),
        pytest.raises(PermissionError),
    ):
        fs.rename(source, tmp_path / "target", policy=fs.fs_policy(permission_errors=False))


def test_the_set_of_errnos_is_configurable(tmp_path: Path, source: Path) -> None:
    policy = fs.fs_policy(errnos={errno.EAGAIN})
    with inject_fs_faults(operation="rename", error=OSError(errno.EAGAIN, "Try again"), times=2):
        fs.rename(source, tmp_path / "target", policy=policy)
    with (
        inject_fs_faults(operation="rename", error=OSError(errno.EBUSY, "Busy")),
        pytest.raises(OSError, match="Busy"),
    ):
        fs.rename(tmp_path / "target", source, policy=policy)


def test_classifier_reasons_leave_out_file_names() -> None:
    classify = fs.FsClassifier()
    busy = OSError(errno.EBUSY, "Device or resource busy", "/a", None, "/b")
    assert classify(busy).reason == "[Errno 16] Device or resource busy"
    assert (
        classify(windows_error(32, "Sharing violation")).reason == "[WinError 32] Sharing violation"
    )
    assert classify(ValueError("no")).retry is False


@pytest.mark.parametrize("window", [0.0, -1.0, float("inf"), float("nan")])
def test_an_invalid_window_is_a_config_error(window: float) -> None:
    with pytest.raises(surefetch.ConfigError, match="window"):
        fs.fs_policy(window=window)


def test_the_policy_retries_as_often_as_the_window_allows() -> None:
    assert fs.fs_policy(window=10.0).retries > fs.fs_policy(window=3.0).retries >= 5
    assert fs.fs_policy(window=3.0).deadline == 3.0


# --- replace, persist_dir, remove_tree, write_atomic ----------------------------------


def test_replace_overwrites_after_spurious_failures(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "target.txt"
    target.write_text("old")
    with inject_fs_faults(operation="replace", error=ACCESS_DENIED, times=2):
        fs.replace(source, target)
    assert target.read_text() == "payload"
    assert len(retry_messages(caplog)) == 2
    assert retry_messages(caplog)[0].startswith(f"Retrying replace of {target} with {source}")


def make_tree(path: Path, content: str = "ours") -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "file.txt").write_text(content)
    (path / "top.txt").write_text(content)
    return path


def test_persist_dir_moves_a_tree_into_place(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "tmp")
    assert fs.persist_dir(src, tmp_path / "final") is True
    assert (tmp_path / "final" / "sub" / "file.txt").read_text() == "ours"
    assert not src.exists()


def test_persist_dir_onto_a_finished_destination_keeps_theirs(tmp_path: Path) -> None:
    theirs = make_tree(tmp_path / "final", "theirs")
    ours = make_tree(tmp_path / "tmp", "ours")
    assert fs.persist_dir(ours, theirs) is False
    assert (theirs / "top.txt").read_text() == "theirs"
    assert not ours.exists()


def test_persist_dir_onto_an_empty_directory_places_ours(tmp_path: Path) -> None:
    (tmp_path / "final").mkdir()
    ours = make_tree(tmp_path / "tmp")
    # Windows refuses to rename onto an existing directory; the same answer here.
    exists = FileExistsError(errno.EEXIST, "Cannot create a file when that file already exists")
    with inject_fs_faults(operation="persist_dir", error=exists):
        assert fs.persist_dir(ours, tmp_path / "final") is True
    assert (tmp_path / "final" / "top.txt").read_text() == "ours"


def test_persist_dir_when_a_concurrent_writer_finishes_during_retries(tmp_path: Path) -> None:
    ours = make_tree(tmp_path / "tmp", "ours")
    final = tmp_path / "final"

    def other_writer_finishes(event: surefetch.RetryEvent) -> None:
        if not final.exists():
            make_tree(final, "theirs")

    unsubscribe = surefetch.add_retry_hook(other_writer_finishes)
    try:
        with inject_fs_faults(operation="persist_dir", error=ACCESS_DENIED, times=10_000) as faults:
            assert fs.persist_dir(ours, final) is False
    finally:
        unsubscribe()
    assert faults.raised == 2  # the first attempt, and the one that found theirs
    assert (final / "top.txt").read_text() == "theirs"
    assert not ours.exists()


def test_persist_dir_never_loses_the_source(tmp_path: Path) -> None:
    ours = make_tree(tmp_path / "tmp")
    with (
        inject_fs_faults(operation="persist_dir", error=windows_error(5, "Access is denied")),
        inject_fs_faults(operation="persist_dir", error=ACCESS_DENIED, times=10_000),
        pytest.raises(surefetch.RetriesExhausted, match="Rename failed after"),
    ):
        fs.persist_dir(ours, tmp_path / "final")
    assert (ours / "sub" / "file.txt").read_text() == "ours"
    assert not (tmp_path / "final").exists()


def test_remove_tree_removes_trees_files_and_links_and_ignores_missing(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside")
    tree = make_tree(tmp_path / "tree")
    (tree / "link").symlink_to(outside, target_is_directory=True)
    link = tmp_path / "link"
    link.symlink_to(outside, target_is_directory=True)
    file = tmp_path / "file.txt"
    file.write_text("x")

    for path in (tree, link, file, tmp_path / "missing"):
        fs.remove_tree(path)
        assert not os.path.lexists(path)
    assert (outside / "sub" / "file.txt").exists()


def test_remove_tree_retries_spurious_failures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_tree(tmp_path / "tree")
    with inject_fs_faults(operation="remove_tree", error=windows_error(32, "In use"), times=3):
        fs.remove_tree(tree)
    assert not tree.exists()
    assert retry_messages(caplog)[0].startswith(f"Retrying removal of {tree} after ")


def test_write_atomic_writes_bytes_and_text(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    fs.write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    fs.write_atomic(target, "tëxt")
    assert target.read_text(encoding="utf-8") == "tëxt"
    if os.name == "posix":
        assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["file.json"]


def test_write_atomic_syncs_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = counting_fsync(monkeypatch)
    target = tmp_path / "a.json"
    fs.write_atomic(target, b"1")
    assert len(synced) == 2  # the file, then its directory
    fs.write_atomic(target, b"2", durable=False)
    assert len(synced) == 2 and target.read_bytes() == b"2"
    asyncio.run(fs.write_atomic_async(target, b"3", durable=False))
    assert len(synced) == 2 and target.read_bytes() == b"3"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left


def test_write_atomic_retries_and_on_failure_leaves_the_old_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "file.txt"
    with inject_fs_faults(operation="write_atomic", error=ACCESS_DENIED, times=2):
        fs.write_atomic(target, "first")
    assert target.read_text() == "first"
    assert len(retry_messages(caplog)) == 2

    with (
        inject_fs_faults(operation="write_atomic", error=ACCESS_DENIED, times=10_000),
        pytest.raises(surefetch.RetriesExhausted, match="Write failed after"),
    ):
        fs.write_atomic(target, "second")
    assert target.read_text() == "first"
    assert os.listdir(tmp_path) == ["file.txt"]


# --- async twins ----------------------------------------------------------------------


def test_async_twins_retry_like_the_sync_functions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "old").write_text("old")
    tree = make_tree(tmp_path / "tree")

    async def main() -> None:
        with inject_fs_faults(operation="rename", error=ACCESS_DENIED, times=1):
            await fs.rename_async(tmp_path / "a", tmp_path / "b")
        with inject_fs_faults(operation="replace", error=ACCESS_DENIED, times=1):
            await fs.replace_async(tmp_path / "b", tmp_path / "old")
        with inject_fs_faults(operation="persist_dir", error=ACCESS_DENIED, times=1):
            assert await fs.persist_dir_async(tree, tmp_path / "final") is True
        with inject_fs_faults(operation="write_atomic", error=ACCESS_DENIED, times=1):
            await fs.write_atomic_async(tmp_path / "note", "note")
        with inject_fs_faults(operation="remove_tree", error=ACCESS_DENIED, times=1):
            await fs.remove_tree_async(tmp_path / "final")
        ours = make_tree(tmp_path / "ours")
        theirs = make_tree(tmp_path / "theirs", "theirs")
        assert await fs.persist_dir_async(ours, theirs) is False
        assert not ours.exists()

    asyncio.run(main())
    assert (tmp_path / "old").read_text() == "a"
    assert (tmp_path / "note").read_text() == "note"
    assert not (tmp_path / "final").exists()
    assert len(retry_messages(caplog)) == 5


def test_async_attempts_run_off_the_event_loop_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: Path
) -> None:
    threads: list[threading.Thread] = []

    def record(operation: str, path: str, other: str | None) -> None:
        threads.append(threading.current_thread())

    monkeypatch.setattr(_seam, "hooks", (record,))

    async def main() -> threading.Thread:
        await fs.rename_async(source, tmp_path / "target")
        return threading.current_thread()

    loop_thread = asyncio.run(main())
    assert threads
    assert loop_thread not in threads


def test_async_exhaustion_keeps_the_source(tmp_path: Path, source: Path) -> None:
    async def main() -> None:
        with inject_fs_faults(operation="rename", error=ACCESS_DENIED, times=10_000):
            await fs.rename_async(source, tmp_path / "target")

    with pytest.raises(surefetch.RetriesExhausted, match="Rename failed after"):
        asyncio.run(main())
    assert source.read_text() == "payload"


# --- the fault-injection hook ---------------------------------------------------------


def test_faults_apply_to_the_chosen_operation_only_and_end_with_the_block(
    tmp_path: Path, source: Path
) -> None:
    with inject_fs_faults(operation="replace", error=ACCESS_DENIED, times=5) as faults:
        fs.rename(source, tmp_path / "b")
    assert faults.raised == 0
    assert faults.remaining == 5
    assert _seam.hooks == ()
    fs.rename(tmp_path / "b", source)


def test_fault_hook_validates_its_arguments() -> None:
    with (
        pytest.raises(ValueError, match="operation='move'"),
        inject_fs_faults(operation="move", error=ACCESS_DENIED),
    ):
        pass
    with (
        pytest.raises(ValueError, match="times"),
        inject_fs_faults(operation="rename", error=ACCESS_DENIED, times=-1),
    ):
        pass
    with (
        pytest.raises(TypeError),
        inject_fs_faults(
            operation="rename",
            error=ValueError("x"),  # type: ignore[arg-type]
        ),
    ):
        pass


def test_injected_errors_are_fresh_copies_that_name_the_paths(tmp_path: Path, source: Path) -> None:
    error = windows_error(5, "Access is denied")
    with (
        inject_fs_faults(operation="rename", error=error, times=10_000),
        pytest.raises(surefetch.RetriesExhausted) as caught,
    ):
        fs.rename(source, tmp_path / "target")
    errors = [attempt.error for attempt in caught.value.attempts]
    assert len({id(e) for e in errors}) == len(errors)
    assert all(getattr(e, "winerror", None) == 5 for e in errors)
    assert error.filename is None
    assert str(errors[-1]).endswith(f"'{source}' -> '{tmp_path / 'target'}'")


# --- a real operating-system failure ---------------------------------------------------


def immutable_flag_unavailable(directory: Path) -> str | None:
    """Why ``chattr +i`` cannot be used on ``directory`` here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "the immutable flag test needs Linux"
    if shutil.which("chattr") is None:
        return "chattr is not installed"
    if os.geteuid() != 0:
        return "setting the immutable flag needs root (CAP_LINUX_IMMUTABLE)"
    result = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        return f"this filesystem refuses chattr +i: {result.stderr.strip()}"
    subprocess.run(["chattr", "-i", str(directory)], check=True)
    return None


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    directory = tmp_path / "immutable"
    directory.mkdir()
    reason = immutable_flag_unavailable(directory)
    if reason is not None:
        pytest.skip(reason)

    def clear() -> None:
        subprocess.run(["chattr", "-i", str(directory)], check=True)

    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield directory, clear
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=False)


def test_rename_into_a_briefly_immutable_directory_succeeds_once_it_is_cleared(
    immutable_dir: tuple[Path, Callable[[], None]],
    source: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory, clear = immutable_dir
    events: list[surefetch.RetryEvent] = []

    def clear_after_first_retry(event: surefetch.RetryEvent) -> None:
        if not events:
            clear()
        events.append(event)

    unsubscribe = surefetch.add_retry_hook(clear_after_first_retry)
    try:
        fs.rename(source, directory / "moved.txt")
    finally:
        unsubscribe()

    assert (directory / "moved.txt").read_text() == "payload"
    assert len(events) == 1
    assert events[0].reason == "[Errno 1] Operation not permitted"
    assert retry_messages(caplog) == [events[0].message]
