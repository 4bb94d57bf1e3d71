"""Filesystem operations that ride out spurious errors, sync and async.

On Windows an antivirus scanner, an indexer or a backup agent opens a freshly
written file for a moment, and a rename in that moment fails with "Access is
denied" (os error 5) or a sharing violation (os errors 32 and 33). Network
filesystems answer EBUSY or ESTALE for a moment in the same way. Every
function here retries such errors with backoff through the retry engine, so
the events, the INFO log line and the `RetriesExhausted` message are the same
as for network retries.

The retries run inside a short window (`fs_policy`, a few seconds on POSIX,
about ten on Windows): long enough for a scanner to let go, short enough that
a permission problem that is real still fails promptly, with the last error
as the cause.

Each call draws on a budget of its own (``independent=True``): a rename inside
a download's retry loop must neither spend nor be starved by the download's
network retries.

The async twins run each attempt in a worker thread and wait with
``asyncio.sleep``, so the event loop is never blocked.

Before each attempt the functions consult the fault-injection seam
(`surefetch._fs.faults`), which `surefetch.testing.inject_fs_faults` fills to
make the next calls fail.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from collections.abc import Callable
from typing import TypeVar

from surefetch._errors import RetriesExhausted
from surefetch._fs import faults, tree
from surefetch._fs.policy import fs_policy
from surefetch._log import logger
from surefetch._retry.loops import aretrying, retrying
from surefetch._retry.policy import RetryPolicy

T = TypeVar("T")
StrPath = str | os.PathLike[str]


_DEFAULT_POLICY = fs_policy()


def _run(call: Callable[[], T], *, operation: str, subject: str, policy: RetryPolicy | None) -> T:
    for attempt in retrying(
        policy=policy or _DEFAULT_POLICY, operation=operation, independent=True, subject=subject
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _arun(
    call: Callable[[], T], *, operation: str, subject: str, policy: RetryPolicy | None
) -> T:
    import asyncio  # here: synchronous users (and cache hits) never load asyncio

    async for attempt in aretrying(
        policy=policy or _DEFAULT_POLICY, operation=operation, independent=True, subject=subject
    ):
        with attempt:
            return await asyncio.to_thread(call)
    raise AssertionError("unreachable: the last attempt returns or raises")


# --- single attempts -------------------------------------------------------------


def _rename_once(operation: str, src: str, dst: str) -> None:
    if faults.hooks:
        faults.inject(operation, src, dst)
    os.rename(src, dst)


def _replace_once(operation: str, src: str, dst: str) -> None:
    if faults.hooks:
        faults.inject(operation, src, dst)
    os.replace(src, dst)


def _is_filled_dir(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def _persist_once(src: str, dst: str) -> bool:
    """Move ``src`` to ``dst``; False when ``dst`` already holds a finished directory."""
    try:
        _rename_once("persist_dir", src, dst)
        return True
    except OSError as error:
        if _is_filled_dir(dst):
            return False
        # Windows does not rename onto an existing directory, even an empty
        # one (POSIX does): take the empty one away and try once more.
        exists = isinstance(error, FileExistsError) or error.errno == errno.ENOTEMPTY
        if not (exists and os.path.isdir(dst)):
            raise
        try:
            os.rmdir(dst)
        except OSError:
            raise error from None
    try:
        os.rename(src, dst)
    except OSError:
        if _is_filled_dir(dst):
            return False
        raise
    return True


def _remove_once(path: str) -> None:
    if faults.hooks:
        faults.inject("remove_tree", path)
    tree.remove_once(path)


def _write_temp(path: str, data: bytes, mode: int, *, durable: bool = True) -> str:
    """A temporary file next to ``path`` holding ``data``, flushed (to disk if ``durable``)."""
    directory, name = os.path.split(path)
    # Keep the name short enough for the 255-byte limit of most filesystems.
    fd, temp = tempfile.mkstemp(dir=directory or ".", prefix=f".{name[:100]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), mode)
            if durable:
                os.fsync(file.fileno())
    except BaseException:
        tree.unlink_path(temp)
        raise
    return temp


def fsync_path(path: str) -> None:
    """Flush the file or directory at ``path`` to disk, as far as a reader can; never raises.

    Windows wants a writable handle for a file, some filesystems (network
    ones) refuse fsync on a directory: the renames still keep entries whole.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a rename in directory ``path`` durable (POSIX; elsewhere, or unsupported, a no-op)."""
    if os.name == "posix":
        fsync_path(path)


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _discard_quietly(path: str, policy: RetryPolicy | None, why: str) -> None:
    try:
        remove_tree(path, policy=policy)
    except (OSError, RetriesExhausted) as error:
        logger.warning("Could not remove %s (%s): %s", path, why, error)


# --- public functions -----------------------------------------------------------


def rename(src: StrPath, dst: StrPath, *, policy: RetryPolicy | None = None) -> None:
    """Rename ``src`` to ``dst`` (`os.rename`), retrying spurious errors.

    As with `os.rename`, an existing file ``dst`` is replaced on POSIX and is
    an error on Windows; use `replace` to replace everywhere. ``policy``
    defaults to `fs_policy()`. When the window passes, `RetriesExhausted` is
    raised from the last error and ``src`` is where it was.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a").write_text("x")
        >>> rename(d / "a", d / "b")
        >>> (d / "b").read_text()
        'x'
    """
    s, d = os.fspath(src), os.fspath(dst)
    call = functools.partial(_rename_once, "rename", s, d)
    _run(call, operation=f"rename from {s} to {d}", subject="Rename", policy=policy)


async def rename_async(src: StrPath, dst: StrPath, *, policy: RetryPolicy | None = None) -> None:
    """The async twin of `rename`: attempts run in a thread, waits do not block the loop.

    Example:
        >>> import asyncio, pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a").write_text("x")
        >>> asyncio.run(rename_async(d / "a", d / "b"))
        >>> (d / "b").exists()
        True
    """
    s, d = os.fspath(src), os.fspath(dst)
    call = functools.partial(_rename_once, "rename", s, d)
    await _arun(call, operation=f"rename from {s} to {d}", subject="Rename", policy=policy)


def replace(src: StrPath, dst: StrPath, *, policy: RetryPolicy | None = None) -> None:
    """Rename ``src`` to ``dst``, replacing a file ``dst`` on every platform (`os.replace`).

    Spurious errors are retried as in `rename`; on failure ``src`` stays.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "new").write_text("new"); _ = (d / "old").write_text("old")
        >>> replace(d / "new", d / "old")
        >>> (d / "old").read_text()
        'new'
    """
    s, d = os.fspath(src), os.fspath(dst)
    call = functools.partial(_replace_once, "replace", s, d)
    _run(call, operation=f"replace of {d} with {s}", subject="Replace", policy=policy)


async def replace_async(src: StrPath, dst: StrPath, *, policy: RetryPolicy | None = None) -> None:
    """The async twin of `replace`.

    Example:
        >>> import asyncio, pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "new").write_text("new"); _ = (d / "old").write_text("old")
        >>> asyncio.run(replace_async(d / "new", d / "old"))
        >>> (d / "old").read_text()
        'new'
    """
    s, d = os.fspath(src), os.fspath(dst)
    call = functools.partial(_replace_once, "replace", s, d)
    await _arun(call, operation=f"replace of {d} with {s}", subject="Replace", policy=policy)


def persist_dir(src: StrPath, dst: StrPath, *, policy: RetryPolicy | None = None) -> bool:
    """Move a finished temporary directory ``src`` into place at ``dst``, in one rename.

    Returns True when ``src`` became ``dst``. When ``dst`` already is a
    non-empty directory (a concurrent writer finished first), that is success
    too: theirs is kept, ``src`` is removed and the result is False. On
    failure ``src`` is never lost: it is still where it was.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "tmp").mkdir(); _ = (d / "tmp" / "f").write_text("x")
        >>> persist_dir(d / "tmp", d / "final")
        True
    """
    s, d = os.fspath(src), os.fspath(dst)
    call = functools.partial(_persist_once, s, d)
    placed = _run(call, operation=f"rename from {s} to {d}", subject="Rename", policy=policy)
    if not placed:
        _discard_quietly(s, policy, f"{d} was already in place")
    return placed


async def persist_dir_async(
    src: StrPath, dst: StrPath, *, policy: RetryPolicy | None = None
) -> bool:
    """The async twin of `persist_dir`.

    Example:
        >>> import asyncio, pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "tmp").mkdir(); _ = (d / "tmp" / "f").write_text("x")
        >>> asyncio.run(persist_dir_async(d / "tmp", d / "final"))
        True
    """
    import asyncio

    s, d = os.fspath(src), os.fspath(dst)
    call = functools.partial(_persist_once, s, d)
    placed = await _arun(call, operation=f"rename from {s} to {d}", subject="Rename", policy=policy)
    if not placed:
        await asyncio.to_thread(_discard_quietly, s, policy, f"{d} was already in place")
    return placed


def remove_tree(path: StrPath, *, policy: RetryPolicy | None = None) -> None:
    """Remove a directory tree, a file or a symbolic link; a missing ``path`` is fine.

    A retry continues where the failed attempt stopped. A symbolic link is
    removed, never followed. The walk is iterative and goes relative to open
    directories, so a tree of any depth is removed (no recursion limit, no
    path too long). Read-only directories of the tree (and, on Windows,
    read-only files) are made writable first.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "sub").mkdir(); _ = (d / "sub" / "f").write_text("x")
        >>> remove_tree(d)
        >>> d.exists()
        False
    """
    p = os.fspath(path)
    call = functools.partial(_remove_once, p)
    _run(call, operation=f"removal of {p}", subject="Removal", policy=policy)


async def remove_tree_async(path: StrPath, *, policy: RetryPolicy | None = None) -> None:
    """The async twin of `remove_tree`.

    Example:
        >>> import asyncio, pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> asyncio.run(remove_tree_async(d))
        >>> d.exists()
        False
    """
    p = os.fspath(path)
    call = functools.partial(_remove_once, p)
    await _arun(call, operation=f"removal of {p}", subject="Removal", policy=policy)


def write_atomic(
    path: StrPath,
    data: bytes | str,
    *,
    mode: int = 0o644,
    policy: RetryPolicy | None = None,
    durable: bool = True,
) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old content or the new, never a mix.

    Writes a temporary file in the same directory, flushes and fsyncs it, then
    replaces ``path`` with it (retrying spurious errors) and syncs the
    directory. A ``str`` is written as UTF-8; ``mode`` sets the permissions
    (POSIX). On failure ``path`` is unchanged and the temporary file removed.
    With ``durable=False`` nothing is fsynced: readers still see the old
    content or the new, but a crash of the OS may leave the old content, or
    on some filesystems an empty file.

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "settings.json"
        >>> write_atomic(target, '{"ok": true}')
        >>> target.read_text()
        '{"ok": true}'
    """
    p = os.fspath(path)
    temp = _write_temp(p, _as_bytes(data), mode, durable=durable)
    try:
        call = functools.partial(_replace_once, "write_atomic", temp, p)
        _run(call, operation=f"atomic write of {p}", subject="Write", policy=policy)
    except BaseException:
        tree.unlink_path(temp)
        raise
    if durable:
        fsync_dir(os.path.dirname(p) or ".")


def write_new(path: StrPath, data: bytes | str, *, mode: int = 0o644) -> None:
    """Create the file ``path``, which must not exist, holding ``data``; not fsynced.

    For a file in a directory that no reader sees yet (an entry being built
    in the cache's temporary area): the directory's own rename makes it
    appear whole, so the temporary file and the rename of `write_atomic`
    would only cost time. Neither the file nor its directory is synced: that
    is the caller's step, once everything is in place, so that one journal
    commit carries all of it. A ``str`` is written as UTF-8; ``mode`` is
    reduced by the umask. On failure no file is left.

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "entry.json"
        >>> write_new(target, "{}")
        >>> target.read_text()
        '{}'
    """
    p = os.fspath(path)
    if faults.hooks:
        faults.inject("write_new", p)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(p, flags, mode)
    try:
        view = memoryview(_as_bytes(data))
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        tree.unlink_path(p)
        raise
    os.close(fd)


async def write_atomic_async(
    path: StrPath,
    data: bytes | str,
    *,
    mode: int = 0o644,
    policy: RetryPolicy | None = None,
    durable: bool = True,
) -> None:
    """The async twin of `write_atomic`.

    Example:
        >>> import asyncio, pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
        >>> asyncio.run(write_atomic_async(target, b"hello"))
        >>> target.read_bytes()
        b'hello'
    """
    import asyncio

    p = os.fspath(path)
    temp = await asyncio.to_thread(_write_temp, p, _as_bytes(data), mode, durable=durable)
    try:
        call = functools.partial(_replace_once, "write_atomic", temp, p)
        await _arun(call, operation=f"atomic write of {p}", subject="Write", policy=policy)
    except BaseException:
        tree.unlink_path(temp)
        raise
    if durable:
        await asyncio.to_thread(fsync_dir, os.path.dirname(p) or ".")
