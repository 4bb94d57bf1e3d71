"""Cache maintenance: verify, prune, clean and info.

All of it is safe while other processes use the cache: entries are only
ever removed by renaming them away whole (a reader sees the entry or nothing),
and a temporary is only removed while its key's lock is held by us, so a live
writer's work is never pulled from under it.

`Cache.verify`, `Cache.prune`, `Cache.clean` and `Cache.info` call in here;
this module does not import the store back: what it needs of a cache is the
`MaintainedCache` protocol, which `Cache` satisfies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from surefetch._cache import staging
from surefetch._cache.entry import (
    file_sha256,
    payload_path,
    read_meta,
    tree_manifest,
)
from surefetch._cache.layout import (
    BUCKET_BUILT_WHEELS,
    KIND_FILE,
    META_NAME,
    PARTIAL_DIR,
    TAG_NAME,
    TRASH_PREFIX,
    bucket_version,
)
from surefetch._cache.names import BUCKET_DIR_PATTERN, KEY_PATTERN
from surefetch._cache.reports import (
    BucketInfo,
    CacheInfo,
    CleanReport,
    CorruptEntry,
    PruneReport,
    VerifyReport,
)
from surefetch._errors import CacheError, RetriesExhausted
from surefetch._fs import ops as _fs, tree as _fs_tree
from surefetch._log import logger

if TYPE_CHECKING:
    from surefetch._retry.policy import RetryPolicy


class MaintainedCache(Protocol):
    """What maintenance uses of a cache: `surefetch.cache.Cache` satisfies it.

    Example:
        >>> import tempfile
        >>> from surefetch.cache import Cache
        >>> cache: MaintainedCache = Cache(tempfile.mkdtemp())
        >>> verify(cache, fix=False).checked
        0
    """

    root: Path
    lock_timeout: float
    fs_policy: RetryPolicy | None

    @property
    def tmp_dir(self) -> Path: ...

    @property
    def locks_dir(self) -> Path: ...

    def prepare(self) -> None: ...

    def discard(self, path: str | os.PathLike[str]) -> bool: ...

    def lock(
        self, bucket: str, key: str, *, timeout: float | None = None
    ) -> AbstractContextManager[None]: ...


# --- walking -------------------------------------------------------------------


def _scan(path: str) -> list[os.DirEntry[str]]:
    """The items of a directory, or none when it is missing (taken away concurrently)."""
    try:
        with os.scandir(path) as items:
            return list(items)
    except (FileNotFoundError, NotADirectoryError):
        return []


def tree_size(path: str) -> int:
    """Bytes of the files under ``path`` (or of ``path``), not following links, at any depth."""
    try:
        return _fs_tree.tree_size(path)
    except FileNotFoundError:
        return 0  # taken away concurrently


def _bucket_dirs(cache: MaintainedCache) -> Iterator[tuple[str, int, str]]:
    """(bucket, layout version, path) of every bucket directory under the root."""
    for item in sorted(_scan(os.fspath(cache.root)), key=lambda item: item.name):
        match = BUCKET_DIR_PATTERN.fullmatch(item.name)
        if match and item.is_dir(follow_symlinks=False):
            yield match["bucket"], int(match["version"]), item.path


def _entry_dirs(bucket_dir: str) -> Iterator[tuple[str, str, str]]:
    """(shard, name, path) of every item two levels down: the entries of a bucket."""
    for shard in sorted(_scan(bucket_dir), key=lambda item: item.name):
        for item in sorted(_scan(shard.path), key=lambda item: item.name):
            yield shard.name, item.name, item.path


# --- verify --------------------------------------------------------------------


def _unsound_zip(tree: str) -> str | None:
    """Why a ``.whl`` at the top of ``tree`` is not a sound zip, or None (built wheels)."""
    import zipfile

    for item in _scan(tree):
        if not item.name.endswith(".whl"):
            continue
        try:
            with zipfile.ZipFile(item.path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            return f"the wheel {item.name} is not a valid zip file: {error}"
        if bad is not None:
            return f"the wheel {item.name} is damaged: its member {bad} fails its CRC check"
    return None


def _problem(shard: str, name: str, path: str, bucket: str = "") -> str | None:
    """Why the entry at ``path`` is unsound, or None when it is sound."""
    if not KEY_PATTERN.fullmatch(name) or name[:2] != shard:
        return "not a cache entry (unexpected name)"
    if not os.path.isdir(path):
        return "not a cache entry (not a directory)"
    try:
        meta = read_meta(path)
    except ValueError as error:
        return f"unreadable {META_NAME}: {error}"
    if meta is None:
        return f"{META_NAME} is missing"
    if meta.content_key and meta.sha256 != name:
        # Payload and entry.json agree with each other, but not with the key:
        # a hit for this sha256 would hand out other bytes.
        return f"its key names sha256 {name}, its {META_NAME} records {meta.sha256}"
    payload = payload_path(path, meta)
    if meta.kind == KIND_FILE:
        if not os.path.isfile(payload):
            return f"the file {meta.filename} is missing"
        sha256, size = file_sha256(payload)
        if size != meta.size:
            return f"the file has {size} bytes, expected {meta.size}"
        if sha256 != meta.sha256:
            return f"the file's sha256 is {sha256}, expected {meta.sha256}"
        return None
    if not os.path.isdir(payload):
        return "the tree is missing"
    try:
        manifest, files, _ = tree_manifest(payload)
    except CacheError as error:
        return str(error)
    if manifest != meta.manifest:
        return f"the tree changed since it was stored ({files} files, {meta.files} expected)"
    if bucket == BUCKET_BUILT_WHEELS:
        return _unsound_zip(payload)
    return None


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(os.path.join(path, META_NAME))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def verify(cache: MaintainedCache, *, fix: bool) -> VerifyReport:
    """See `Cache.verify`."""
    checked = removed = 0
    corrupt: list[CorruptEntry] = []
    for bucket, version, bucket_dir in _bucket_dirs(cache):
        if version != bucket_version(bucket):
            continue  # another version's format: that version of surefetch checks it
        for shard, name, path in _entry_dirs(bucket_dir):
            stamp = _stamp(path)
            try:
                reason = _problem(shard, name, path, bucket)
            except FileNotFoundError as error:
                if not os.path.lexists(path):
                    continue  # removed by another process while we looked
                reason = str(error)
            if reason is not None and not os.path.lexists(path):
                continue  # removed by another process while we looked
            checked += 1
            if reason is None:
                continue
            corrupt.append(CorruptEntry(bucket, name, Path(path), reason))
            logger.info("Corrupt cache entry %s: %s", path, reason)
            if fix and _remove_corrupt(cache, bucket, name, path, stamp):
                removed += 1
    return VerifyReport(checked, tuple(corrupt), removed)


def _remove_corrupt(
    cache: MaintainedCache, bucket: str, key: str, path: str, stamp: tuple[int, int] | None
) -> bool:
    if not KEY_PATTERN.fullmatch(key):
        return cache.discard(path)
    # Under the key's lock, and only if it is still the entry we checked: a
    # writer may have replaced an unreadable entry with a good one meanwhile.
    with cache.lock(bucket, key):
        if _stamp(path) != stamp:
            return False
        return cache.discard(path)


# --- prune ---------------------------------------------------------------------


def _key_lock(cache: MaintainedCache, name: str) -> str | None:
    """The lock file of the key a temporary belongs to, if its name names one.

    Names are ``<bucket>-v<N>~<key>~<random>`` (temporaries) and
    ``<bucket>-v<N>~<key>.part`` plus any suffix (partials and their sidecars).
    """
    parts = name.split("~")
    if len(parts) < 2 or not BUCKET_DIR_PATTERN.fullmatch(parts[0]):
        return None
    key = parts[1].split(".", 1)[0]
    if not KEY_PATTERN.fullmatch(key):
        return None
    return os.path.join(cache.locks_dir, f"{parts[0]}~{key}.lock")


def _age(path: str, now: float) -> float | None:
    try:
        return now - os.lstat(path).st_mtime
    except FileNotFoundError:
        return None


def _remove(cache: MaintainedCache, path: str) -> int | None:
    """Remove ``path``; the bytes it held, or None when it could not be removed."""
    try:
        size = tree_size(path)
        _fs.remove_tree(path, policy=cache.fs_policy)
    except (OSError, RetriesExhausted) as error:
        logger.warning("Could not remove %s: %s", path, error)
        return None
    return size


def _prune_unlocked(cache: MaintainedCache, path: str, lock: str | None) -> int | None:
    """Remove a temporary if no live writer owns it; its bytes, or None when it stays."""
    if lock is None:
        return _remove(cache, path)
    from surefetch._cache.lock import try_hold  # the lock machinery: imported by writers only

    with try_hold(lock) as held:
        return _remove(cache, path) if held else None


def prune(cache: MaintainedCache, *, older_than: float) -> PruneReport:
    """See `Cache.prune`."""
    if older_than < 0:
        raise ValueError(f"older_than={older_than!r} is not valid: expected seconds >= 0")
    tmp = os.fspath(cache.tmp_dir)
    if not os.path.isdir(tmp):
        return PruneReport(0, 0, 0, 0)
    cache.prepare()
    now = time.time()
    temporaries = partials = trash = stagings = freed = 0
    for item in _scan(tmp):
        if item.name == PARTIAL_DIR:
            for partial in _scan(item.path):
                age = _age(partial.path, now)
                if age is None or age < older_than:
                    continue
                lock = _key_lock(cache, partial.name)
                size = _prune_unlocked(cache, partial.path, lock)
                if size is not None:
                    partials += 1
                    freed += size
        elif item.name.startswith(TRASH_PREFIX):
            # Already out of sight; whoever put it there may be removing it too.
            size = _remove(cache, item.path)
            if size is not None:
                trash += 1
                freed += size
        elif item.name.startswith(staging.PREFIX) and item.name.endswith(staging.CLAIM_SUFFIX):
            # A staging directory outside the cache, claimed here (see `staging`).
            age = _age(item.path, now)
            if age is None or age < older_than:
                continue
            digest = item.name.removeprefix(staging.PREFIX).removesuffix(staging.CLAIM_SUFFIX)
            size = staging.reap(cache, digest)
            if size is not None:
                stagings += 1
                freed += size
        else:
            age = _age(item.path, now)
            if age is None or age < older_than:
                continue
            size = _prune_unlocked(cache, item.path, _key_lock(cache, item.name))
            if size is not None:
                temporaries += 1
                freed += size
    for item in _scan(os.fspath(cache.locks_dir)):
        if item.name.startswith(staging.PREFIX):
            staging.reap_orphan_lock(cache, item.name)
    # A writer of the cache tag killed before its rename leaves ".CACHEDIR.TAG.*.tmp".
    for item in _scan(os.fspath(cache.root)):
        if item.name.startswith(f".{TAG_NAME}.") and item.name.endswith(".tmp"):
            age = _age(item.path, now)
            if age is not None and age >= older_than and _remove(cache, item.path) is not None:
                temporaries += 1
    return PruneReport(temporaries, partials, trash, freed, stagings)


# --- clean ---------------------------------------------------------------------


def clean(cache: MaintainedCache) -> CleanReport:
    """See `Cache.clean`."""
    root = os.fspath(cache.root)
    if not os.path.isdir(root):
        return CleanReport(0, 0)
    cache.prepare()
    from surefetch._cache.lock import hold

    # Wait for every writer at work now: each holds its key's lock until its
    # entry is committed, so afterwards nothing is half done.
    for item in sorted(_scan(os.fspath(cache.locks_dir)), key=lambda item: item.name):
        if item.name.endswith(".lock"):
            with hold(item.path, timeout=cache.lock_timeout, what=item.name.removesuffix(".lock")):
                pass
    entries = size = 0
    for _, _, bucket_dir in list(_bucket_dirs(cache)):
        trash = os.path.join(cache.tmp_dir, f"{TRASH_PREFIX}{os.urandom(8).hex()}")
        try:
            _fs.rename(bucket_dir, trash, policy=cache.fs_policy)
        except FileNotFoundError:
            continue
        for shard in _scan(trash):
            entries += len(_scan(shard.path))
        removed = _remove(cache, trash)
        size += removed or 0
    prune(cache, older_than=0.0)
    return CleanReport(entries, size)


# --- info ----------------------------------------------------------------------


def info(cache: MaintainedCache) -> CacheInfo:
    """See `Cache.info`."""
    buckets = []
    for bucket, version, bucket_dir in _bucket_dirs(cache):
        entries = total = 0
        for _, _, path in _entry_dirs(bucket_dir):
            entries += 1
            total += tree_size(path)
        buckets.append(BucketInfo(bucket, version, entries, total))
    temporary_items = temporary_bytes = 0
    for item in _scan(os.fspath(cache.tmp_dir)):
        if item.name == PARTIAL_DIR:
            for partial in _scan(item.path):
                temporary_items += 1
                temporary_bytes += tree_size(partial.path)
        else:
            temporary_items += 1
            temporary_bytes += tree_size(item.path)
    return CacheInfo(cache.root, tuple(buckets), temporary_items, temporary_bytes)
