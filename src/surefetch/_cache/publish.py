"""Publishing an entry: a complete file or tree becomes visible in its bucket by one rename.

`Cache.commit_file` and `Cache.commit_dir` check what they are given, then
hand it here with a staging directory in the temporary area: the payload is
moved into it beside a fresh ``entry.json`` (copied when it is on another
filesystem), and the staging directory is renamed onto the entry's place in
one step. A broken entry in the way is discarded; a concurrent writer's sound
entry is kept and returned; on failure the caller's source is put back.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from surefetch._cache.durability import sound_entry
from surefetch._cache.entry import Entry, EntryMeta, payload_path
from surefetch._cache.layout import META_NAME
from surefetch._errors import CacheError, RetriesExhausted
from surefetch._fs import ops as _fs
from surefetch._log import logger

if TYPE_CHECKING:
    from surefetch._retry.policy import RetryPolicy


def publish(
    source: str,
    payload: str,
    staging: str,
    entry_dir: str,
    meta: EntryMeta,
    *,
    policy: RetryPolicy | None,
    discard: Callable[[str], object],
) -> Entry:
    """Put ``source`` at ``payload`` in ``staging``, then ``staging`` at ``entry_dir``.

    The entry that holds ``entry_dir`` afterwards is returned: ours, or a
    concurrent writer's. ``discard`` takes a broken entry out of the way.

    Example:
        >>> import hashlib, pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "staging" / "file").mkdir(parents=True)
        >>> _ = (root / "a.txt").write_bytes(b"a")
        >>> meta = EntryMeta(url="https://h/a.txt", size=1, sha256=hashlib.sha256(b"a").hexdigest(),
        ...                  created=0.0, filename="a.txt")
        >>> entry = publish(str(root / "a.txt"), str(root / "staging" / "file" / "a.txt"),
        ...                 str(root / "staging"), str(root / "entry"), meta,
        ...                 policy=None, discard=print)
        >>> entry.path == root / "entry" / "file" / "a.txt", entry.path.read_bytes()
        (True, b'a')
    """
    # Durability: every name and byte of the staging directory is put in
    # place first, then fsynced: the payload (a file; a tree's files are not
    # synced one by one, see `Cache.commit_dir`), entry.json, file/ for the
    # payload's name and the staging directory for its two names. Syncing
    # only once everything is written lets one journal commit carry all the
    # metadata (fsync in the middle of the writes costs a commit each). Then
    # one rename publishes the entry and the bucket's shard directory is
    # fsynced for that name (`_persist`). A crash at any point leaves either
    # no entry or a complete one. entry.json is written in place, not by a
    # temporary file and a rename: no reader sees the staging directory,
    # whose own rename is what makes the entry appear.
    # An entry stamped with the boot that writes it (the ``lazy`` fsync mode)
    # skips every fsync: a kill loses none of it, and the first lookup after
    # a crash checks it (`surefetch._cache.durability`).
    sync = meta.boot is None
    _move(source, payload, policy=policy)
    try:
        write_meta(staging, meta, entry_dir, policy=policy, new=True)
        if sync:
            if not os.path.isdir(payload):
                _fs.fsync_path(payload)
            _fs.fsync_path(os.path.join(staging, META_NAME))
            holder = os.path.dirname(payload)
            if os.path.normpath(holder) != os.path.normpath(staging):
                _fs.fsync_dir(holder)
            _fs.fsync_dir(staging)
        return _persist(staging, entry_dir, meta, policy=policy, discard=discard, sync=sync)
    except BaseException:
        # Give the caller its (possibly large) download back rather than delete it.
        if os.path.lexists(payload) and not os.path.lexists(source):
            with contextlib.suppress(OSError):
                os.rename(payload, source)
        raise


def remove_quietly(path: str, *, policy: RetryPolicy | None) -> None:
    """Remove ``path``, logging a failure instead of raising it: `prune` finishes the job."""
    try:
        _fs.remove_tree(path, policy=policy)
    except (OSError, RetriesExhausted) as error:
        logger.warning("Could not remove %s (prune will): %s", path, error)


def write_meta(
    directory: str,
    meta: EntryMeta,
    entry_dir: str,
    *,
    policy: RetryPolicy | None,
    new: bool = False,
    durable: bool = True,
) -> None:
    """Write ``entry.json`` in ``directory``: ``new`` in a staging directory, else atomically.

    A ``new`` one is not synced: the caller syncs it with its directory.
    Otherwise it is synced when ``durable``.
    """
    path = os.path.join(directory, META_NAME)
    try:
        # Through the fs layer like every other write of the cache: flushed,
        # and reachable by fault hooks (an atomic replace is also retried
        # when its error is spurious).
        if new:
            _fs.write_new(path, meta.to_json())
        else:
            _fs.write_atomic(path, meta.to_json(), policy=policy, durable=durable)
    except (OSError, RetriesExhausted) as error:
        # A bare "[Errno 28] No space left on device" would say neither what
        # was being stored nor where.
        raise CacheError(
            f"Cannot commit the cache entry {entry_dir}: writing its {META_NAME} ({path}) failed"
        ) from error


def _move(source: str, target: str, *, policy: RetryPolicy | None) -> None:
    try:
        _fs.rename(source, target, policy=policy)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        # The source is on another filesystem: copy it into the temporary
        # area (still invisible to readers), then drop the original.
        import shutil

        if os.path.isdir(source):
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
        remove_quietly(source, policy=policy)


def _persist(
    staging: str,
    entry_dir: str,
    meta: EntryMeta,
    *,
    policy: RetryPolicy | None,
    discard: Callable[[str], object],
    sync: bool,
) -> Entry:
    for _ in range(3):
        if os.path.lexists(entry_dir) and sound_entry(entry_dir) is None:
            # A broken entry would block this key for ever; ours replaces it.
            discard(entry_dir)
        parent = os.path.dirname(entry_dir)
        os.makedirs(parent, exist_ok=True)
        try:
            placed = _fs.persist_dir(staging, entry_dir, policy=policy)
        except FileNotFoundError:
            if os.path.isdir(staging) and not os.path.isdir(parent):
                continue  # `clean` took the bucket away meanwhile: make it again
            raise
        if placed:
            if sync:
                _fs.fsync_dir(parent)
            return Entry(Path(payload_path(entry_dir, meta)), meta)
        theirs = sound_entry(entry_dir)
        if theirs is None:
            raise CacheError(
                f"Another process committed {entry_dir} and it vanished at once; try again"
            )
        return theirs
    raise CacheError(f"Cannot commit {entry_dir}: its bucket keeps disappearing")
