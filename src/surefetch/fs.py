"""Filesystem operations that retry spurious errors: `surefetch.fs`.

Renames, replacements, directory persists, tree removals and atomic writes,
sync and async, each retried with backoff within a short window when the
operating system reports a spurious error (Windows os errors 5, 32 and 33,
EBUSY, ETXTBSY, ESTALE, and PermissionError). Every retry is logged at INFO
on the ``surefetch`` logger; when the window passes, `RetriesExhausted` is
raised from the last error and nothing is lost.

Example:
    >>> import pathlib, tempfile
    >>> import surefetch.fs
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "build").mkdir(); _ = (d / "build" / "wheel.whl").write_bytes(b"PK")
    >>> surefetch.fs.persist_dir(d / "build", d / "wheels")
    True
"""

from __future__ import annotations

from surefetch._fs.ops import (
    persist_dir,
    persist_dir_async,
    remove_tree,
    remove_tree_async,
    rename,
    rename_async,
    replace,
    replace_async,
    write_atomic,
    write_atomic_async,
)
from surefetch._fs.policy import (
    DEFAULT_WINDOW,
    SPURIOUS_ERRNOS,
    SPURIOUS_WINERRORS,
    FsClassifier,
    fs_policy,
)

__all__ = [
    "DEFAULT_WINDOW",
    "SPURIOUS_ERRNOS",
    "SPURIOUS_WINERRORS",
    "FsClassifier",
    "fs_policy",
    "persist_dir",
    "persist_dir_async",
    "remove_tree",
    "remove_tree_async",
    "rename",
    "rename_async",
    "replace",
    "replace_async",
    "write_atomic",
    "write_atomic_async",
]
