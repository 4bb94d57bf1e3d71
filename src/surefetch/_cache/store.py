"""The cache: buckets of entries that appear atomically, complete and verified.

This module is `Cache` and its public methods. It runs past 400 lines because
about half of it is those methods' docstrings and runnable examples; the
machinery they drive is beside it: `publish` (making an entry visible),
`maintenance` (verify, prune, clean, info), `lock`, `names` and `layout`.

Layout under the root (`default_root`: ``SUREFETCH_CACHE_DIR``, else a config
file's ``cache_dir``, else the platform's user cache directory)::

    CACHEDIR.TAG                          marks the tree as a cache for backup tools
    <bucket>-v<N>/<key[:2]>/<key>/        one entry, made visible by one rename:
        entry.json                        its metadata (EntryMeta)
        file/<filename>                   the payload of a file entry, or
        tree/                             the root of an extracted tree
    locks/<bucket>-v<N>~<key>.lock        per-key inter-process locks (never deleted)
    locks/staging~<digest>.lock           held while a staging directory (`staging`) lives
    tmp/                                  the temporary area, on the same filesystem:
        <bucket>-v<N>~<key>~<random>/     a temporary directory, or an entry being built
        partial/<bucket>-v<N>~<key>.part  a resumable partial download
        trash~<random>/                   something being removed
        staging~<digest>.claim            names a staging directory outside the cache

``N`` is the bucket's own layout version (``BUCKET_VERSIONS`` in
``surefetch._cache.layout``; 1 for every bucket today, so ``downloads-v1``).

Why it is shaped so:

* An entry is built complete in ``tmp/`` (payload and ``entry.json``) and
  moved into its bucket with one directory rename, so payload and metadata
  appear together and a reader never sees a partial entry, whatever moment a
  writer is killed at. Entries are removed the same way, by first renaming
  them into ``tmp/trash~*``.
* The payload sits in ``file/`` so that its name can be anything, even
  ``entry.json``, and keeps the name it was downloaded under (a wheel must).
* ``-v<N>`` versions each bucket's layout on its own: a future format of one
  bucket goes to ``-v2`` while the others stay where they are, and old
  versions of surefetch keep working beside it.
* Keys are lower-case (case-insensitive filesystems would merge ``Ab`` and
  ``ab``), and ``key[:2]`` shards a bucket so no directory grows huge. A
  content key is the 64-digit sha256 of the content; a URL key is 32 digits
  (`url_key`), so the two kinds never collide.
* Temporaries are named after their key, so `prune` can tell a live writer's
  (its key's lock is held) from a dead one's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surefetch._cache.entry import (
    Entry,
    EntryMeta,
    read_entry,
    tree_manifest,
)
from surefetch._cache.layout import (
    BUCKET_ARCHIVES as BUCKET_ARCHIVES,
    BUCKET_DOWNLOADS as BUCKET_DOWNLOADS,
    BUCKET_WHEELS as BUCKET_WHEELS,
    KIND_FILE,
    KIND_TREE,
    LAYOUT_VERSION as LAYOUT_VERSION,
    LOCKS_DIR,
    PARTIAL_DIR,
    PARTIAL_SUFFIX,
    TAG_NAME,
    TMP_DIR,
    TRASH_PREFIX,
    bucket_dir_name,
    content_key as content_key,
    current_boot,
    is_valid_filename,
    normalize_url as normalize_url,
    url_key as url_key,
)
from surefetch._cache.names import KEY_PATTERN, check_key
from surefetch._config import MAX_SECONDS
from surefetch._errors import CacheError, ConfigError

if TYPE_CHECKING:
    from surefetch._cache.reports import (
        CacheInfo,
        CleanReport,
        PruneReport,
        VerifyReport,
    )
    from surefetch._retry.policy import RetryPolicy

_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by surefetch.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_SEP = os.sep


def default_root() -> Path:
    """The cache root: ``SUREFETCH_CACHE_DIR``, else the platform's user cache directory.

    The ``cache_dir`` setting of `surefetch._config`: the variable, else a
    config file, else the user cache directory.

    Example:
        >>> isinstance(default_root(), Path)
        True
    """
    from surefetch._config import CACHE_DIR, resolve

    return Path(resolve(CACHE_DIR))


class Cache:
    """A directory of entries that appear atomically, with per-key locks for single flight.

    ``root`` defaults to ``SUREFETCH_CACHE_DIR``, else the platform's user cache
    directory. ``lock_timeout`` is how long `lock` waits for another process
    (default ``SUREFETCH_LOCK_TIMEOUT``, else 600 s); ``fs_policy`` how renames
    into the cache are retried (default `surefetch.fs.fs_policy()`); ``fsync``
    when a file entry is forced onto the disk (default ``SUREFETCH_FSYNC``,
    else ``"lazy"``: by the end of the boot, checked after a restart;
    ``"always"``: before it appears). Nothing is created on disk until
    something is written.

    The pattern for filling a key once across processes::

        entry = cache.lookup(bucket, key)
        if entry is None:
            with cache.lock(bucket, key):
                entry = cache.lookup(bucket, key)  # another process may have made it
                if entry is None:
                    with cache.temp_dir(bucket, key) as work:
                        ...  # download into work / name, verify it
                        entry = cache.commit_file(
                            bucket, key, work / name, filename=name, meta=meta
                        )

    Example:
        >>> import tempfile
        >>> cache = Cache(tempfile.mkdtemp())
        >>> cache.lookup(BUCKET_DOWNLOADS, url_key("https://example.org/a.whl")) is None
        True
    """

    root: Path

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float | None = None,
        fs_policy: RetryPolicy | None = None,
        fsync: str | None = None,
    ) -> None:
        if root is None:
            self.root = default_root()
        elif not os.fspath(root).strip():
            raise ConfigError("root='' is not valid: expected a directory")
        else:
            self.root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        if lock_timeout is None:
            from surefetch._config import LOCK_TIMEOUT, resolve

            lock_timeout = resolve(LOCK_TIMEOUT)
        elif not 0 <= lock_timeout <= MAX_SECONDS:
            raise ConfigError(
                f"lock_timeout={lock_timeout!r} is not valid: "
                f"expected seconds from 0 to {MAX_SECONDS:g}"
            )
        self.lock_timeout = float(lock_timeout)
        from surefetch._config import FSYNC, resolve

        self.fsync: str = resolve(FSYNC) if fsync is None else FSYNC.parse(fsync, label="fsync")
        self.fs_policy = fs_policy
        self._root = os.fspath(self.root)
        self._tmp = os.path.join(self._root, TMP_DIR)
        self._locks = os.path.join(self._root, LOCKS_DIR)
        self._bucket_dirs: dict[str, str] = {}
        self._prepared = False

    def __repr__(self) -> str:
        return f"Cache({self._root!r})"

    @property
    def syncs_files(self) -> bool:
        """Whether `commit_file` fsyncs the file it stores (``fsync="always"``, or no boot id).

        Example:
            >>> Cache("/c", fsync="always").syncs_files
            True
        """
        return self.fsync == "always" or current_boot() is None

    # --- paths and housekeeping ---------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        """The temporary area, ``<root>/tmp``: on the cache's filesystem, out of readers' sight.

        Example:
            >>> Cache("/c").tmp_dir.as_posix().endswith("/c/tmp")
            True
        """
        return Path(self._tmp)

    @property
    def locks_dir(self) -> Path:
        """Where the per-key lock files are, ``<root>/locks``.

        Example:
            >>> Cache("/c").locks_dir.name
            'locks'
        """
        return Path(self._locks)

    def _entry_dir(self, bucket: str, key: str) -> str:
        bucket_dir = self._bucket_dirs.get(bucket)
        if bucket_dir is None or not KEY_PATTERN.fullmatch(key):
            check_key(bucket, key)
            bucket_dir = self._bucket_dirs[bucket] = f"{self._root}{_SEP}{bucket_dir_name(bucket)}"
        return f"{bucket_dir}{_SEP}{key[:2]}{_SEP}{key}"

    def _lock_path(self, bucket: str, key: str) -> str:
        return os.path.join(self._locks, f"{bucket_dir_name(bucket)}~{key}.lock")

    def prepare(self) -> None:
        """Create the temporary area, the lock directory and the cache tag, once.

        Everything that writes calls it first; a directory that cannot be
        written raises `ConfigError`.

        Example:
            >>> import tempfile
            >>> cache = Cache(tempfile.mkdtemp())
            >>> cache.prepare()
            >>> sorted(p.name for p in cache.root.iterdir())
            ['CACHEDIR.TAG', 'locks', 'tmp']
        """
        if self._prepared:
            return
        try:
            os.makedirs(os.path.join(self._tmp, PARTIAL_DIR), exist_ok=True)
            os.makedirs(self._locks, exist_ok=True)
            tag = os.path.join(self._root, TAG_NAME)
            if not os.path.exists(tag):
                from surefetch._fs import ops as _fs  # writers only: a lookup needs none of it

                _fs.write_atomic(tag, _TAG, policy=self.fs_policy)
        except OSError as error:
            # A cache directory that cannot be written is a setting to fix,
            # not a failed download: one line, and exit code 2.
            reason = error.strerror or str(error)
            raise ConfigError(f"cache directory {self._root!r} is not usable: {reason}") from None
        self._prepared = True

    def _new_temp(self, bucket: str, key: str) -> str:
        self.prepare()
        return tempfile.mkdtemp(dir=self._tmp, prefix=f"{bucket_dir_name(bucket)}~{key}~")

    @contextlib.contextmanager
    def _staging(self, bucket: str, key: str) -> Iterator[str]:
        """A new temporary directory of ``key``, removed on exit if still there."""
        path = self._new_temp(bucket, key)
        try:
            yield path
        finally:
            if os.path.lexists(path):
                from surefetch._cache.publish import remove_quietly

                remove_quietly(path, policy=self.fs_policy)

    def discard(self, path: str | os.PathLike[str]) -> bool:
        """Make ``path`` vanish at once (rename it into trash), then delete it.

        ``path`` must be on the cache's filesystem (an entry, a temporary).
        False when ``path`` did not exist. A deletion that fails after the
        rename is left for `prune`: the trash is out of every reader's sight.

        Example:
            >>> import tempfile
            >>> cache = Cache(tempfile.mkdtemp())
            >>> with cache.temp_dir(BUCKET_DOWNLOADS, "ab" * 16) as work:
            ...     cache.discard(work), work.exists()
            (True, False)
        """
        self.prepare()
        from surefetch._cache.publish import remove_quietly
        from surefetch._fs import ops as _fs

        trash = os.path.join(self._tmp, f"{TRASH_PREFIX}{os.urandom(8).hex()}")
        try:
            _fs.rename(path, trash, policy=self.fs_policy)
        except FileNotFoundError:
            return False
        remove_quietly(trash, policy=self.fs_policy)
        return True

    # --- the interface of the fetch layer ----------------------------------------

    def lookup(self, bucket: str, key: str) -> Entry | None:
        """The complete entry for ``key`` in ``bucket``, or None: the cache-hit fast path.

        Never returns a partial entry: entries appear by one rename. An entry
        that cannot be read counts as missing (and is replaced by the next
        commit), and so does a file entry that was published without fsync
        before the system restarted and no longer matches its size and sha256
        (`surefetch._cache.durability`); a sound one is checked only once.
        Under ``fsync="always"``, an entry this boot published without fsync
        (under ``lazy``) is synced before it is returned.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).lookup(BUCKET_WHEELS, content_key("0" * 64)) is None
            True
        """
        from surefetch._cache.durability import sound_entry

        return sound_entry(self._entry_dir(bucket, key), durable=self.syncs_files)

    def remove(self, bucket: str, key: str) -> bool:
        """Remove the entry of ``key`` (for a refresh); False when there was none.

        The entry vanishes at once (it is renamed away, then deleted), so a
        reader sees it whole or not at all. Call it while holding
        ``lock(bucket, key)``.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).remove(BUCKET_DOWNLOADS, "ab" * 16)
            False
        """
        entry_dir = self._entry_dir(bucket, key)
        if not os.path.lexists(entry_dir):
            return False
        return self.discard(entry_dir)

    def lock(
        self, bucket: str, key: str, *, timeout: float | None = None
    ) -> AbstractContextManager[None]:
        """Hold the inter-process lock of ``key`` (single flight), waiting at most ``timeout`` s.

        Logs "Waiting for another process to finish ..." at INFO when the lock
        is held elsewhere, and raises `LockTimeout` after ``timeout`` (default
        `lock_timeout`). The OS releases the lock if its holder dies. Not
        reentrant: do not take the same key's lock twice in one thread.

        Example:
            >>> import tempfile
            >>> cache = Cache(tempfile.mkdtemp())
            >>> with cache.lock(BUCKET_DOWNLOADS, "ab" * 16):
            ...     pass
        """
        from surefetch._cache.lock import hold  # the lock machinery: imported by writers only

        return hold(**self._lock_arguments(bucket, key, timeout))

    def lock_async(
        self, bucket: str, key: str, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """`lock` for async code: waiting occupies no worker thread.

        Tasks of one event loop asking for the same key queue in the process
        and one of them at a time waits for the inter-process lock, polling
        it from the event loop, so a hundred waiters cannot starve the
        threads that the holder needs to finish.

        Example:
            >>> import asyncio, tempfile
            >>> cache = Cache(tempfile.mkdtemp())
            >>> async def main() -> None:
            ...     async with cache.lock_async(BUCKET_DOWNLOADS, "ab" * 16):
            ...         pass
            >>> asyncio.run(main())
        """
        from surefetch._cache.lock import hold_async

        return hold_async(**self._lock_arguments(bucket, key, timeout))

    def _lock_arguments(self, bucket: str, key: str, timeout: float | None) -> dict[str, Any]:
        check_key(bucket, key)
        if timeout is None:
            timeout = self.lock_timeout
        elif not 0 <= timeout <= MAX_SECONDS:
            raise ValueError(f"timeout={timeout!r} is not valid: expected seconds >= 0")
        self.prepare()
        return {
            "path": self._lock_path(bucket, key),
            "timeout": timeout,
            "what": f"{bucket} entry {key}",
        }

    def partial_path(self, bucket: str, key: str) -> Path:
        """A stable path in the temporary area for a resumable partial download of ``key``.

        Its directory exists; the file may exist from an earlier attempt (resume
        it). Touch it only while holding ``lock(bucket, key)``: `prune` removes
        partials whose lock is free and that have not changed for a while.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).partial_path(BUCKET_DOWNLOADS, "ab" * 16).name
            'downloads-v1~abababababababababababababababab.part'
        """
        check_key(bucket, key)
        self.prepare()
        name = f"{bucket_dir_name(bucket)}~{key}{PARTIAL_SUFFIX}"
        return Path(self._tmp, PARTIAL_DIR, name)

    @contextlib.contextmanager
    def temp_dir(self, bucket: str, key: str) -> Iterator[Path]:
        """A fresh, empty directory in the temporary area, removed on exit if still there.

        It is on the cache's filesystem, so committing from it is a rename. Use
        it while holding ``lock(bucket, key)``: `prune` removes temporaries of
        keys whose lock is free.

        Example:
            >>> import tempfile
            >>> cache = Cache(tempfile.mkdtemp())
            >>> with cache.temp_dir(BUCKET_ARCHIVES, "ab" * 16) as work:
            ...     work.is_dir()
            True
        """
        check_key(bucket, key)
        with self._staging(bucket, key) as path:
            yield Path(path)

    def commit_file(
        self,
        bucket: str,
        key: str,
        source: str | os.PathLike[str],
        *,
        filename: str,
        meta: EntryMeta,
    ) -> Entry:
        """Move ``source``, a complete and verified file, into a new entry, atomically.

        The entry appears with its metadata in one rename; ``meta.size`` must
        match the file (the sha256 is trusted: the caller verified it). When a
        concurrent writer committed the key first, theirs is kept, ``source``
        is removed and their entry returned. On failure ``source`` is put back
        where it was when possible. Call it while holding ``lock(bucket, key)``.
        Under the ``lazy`` fsync mode (where the OS names its boot) nothing is
        fsynced and ``entry.meta.boot`` records the boot; under ``always`` the
        file and every name leading to it are on the disk before it appears.

        Example:
            >>> import hashlib, tempfile, time
            >>> cache = Cache(tempfile.mkdtemp())
            >>> bucket, key = BUCKET_DOWNLOADS, url_key("https://example.org/hello.txt")
            >>> with cache.lock(bucket, key), cache.temp_dir(bucket, key) as work:
            ...     _ = (work / "hello.txt").write_bytes(b"hello")
            ...     meta = EntryMeta(url="https://example.org/hello.txt", size=5,
            ...                      sha256=hashlib.sha256(b"hello").hexdigest(),
            ...                      created=time.time())
            ...     entry = cache.commit_file(bucket, key, work / "hello.txt",
            ...                               filename="hello.txt", meta=meta)
            >>> entry.path.read_bytes()
            b'hello'
        """
        entry_dir = self._entry_dir(bucket, key)
        if not is_valid_filename(filename):
            raise ValueError(f"filename={filename!r} is not valid: expected a plain file name")
        src = os.fspath(source)
        size = os.stat(src).st_size
        if size != meta.size:
            raise CacheError(
                f"Cannot store {src} in the cache: "
                f"it has {size} bytes, the metadata says {meta.size}"
            )
        from surefetch._cache.publish import publish

        # Stamped with this boot, the entry is published without fsync (see `durability`).
        boot = None if self.syncs_files else current_boot()
        meta = dataclasses.replace(
            meta, kind=KIND_FILE, filename=filename, files=None, manifest=None, boot=boot
        )

        with self._staging(bucket, key) as staging:
            os.mkdir(os.path.join(staging, KIND_FILE))
            payload = os.path.join(staging, KIND_FILE, filename)
            return publish(
                src, payload, staging, entry_dir, meta, policy=self.fs_policy, discard=self.discard
            )

    def commit_dir(
        self, bucket: str, key: str, source: str | os.PathLike[str], *, meta: EntryMeta
    ) -> Entry:
        """Move ``source``, a complete directory tree (an extracted archive), into a new entry.

        Like `commit_file`; the tree's manifest hash and file count are stored
        in the metadata for `verify`. ``source`` may be a `temp_dir` itself.
        The tree's files are not fsynced one by one (that would cost more than
        extracting them); `verify` finds a tree that a power loss damaged.

        Example:
            >>> import tempfile, time
            >>> cache = Cache(tempfile.mkdtemp())
            >>> key = "ab" * 32
            >>> with cache.lock(BUCKET_ARCHIVES, key), cache.temp_dir(BUCKET_ARCHIVES, key) as work:
            ...     _ = (work / "README").write_text("hi")
            ...     meta = EntryMeta(url="https://example.org/x.tar.gz", size=100, sha256=key,
            ...                      created=time.time())
            ...     entry = cache.commit_dir(BUCKET_ARCHIVES, key, work, meta=meta)
            >>> (entry.path / "README").read_text(), entry.meta.files
            ('hi', 1)
        """
        from surefetch._cache.publish import publish

        entry_dir = self._entry_dir(bucket, key)
        src = os.fspath(source)
        manifest, files, _ = tree_manifest(src)
        meta = dataclasses.replace(
            meta, kind=KIND_TREE, filename=None, files=files, manifest=manifest, boot=None
        )
        with self._staging(bucket, key) as staging:
            payload = os.path.join(staging, KIND_TREE)
            return publish(
                src, payload, staging, entry_dir, meta, policy=self.fs_policy, discard=self.discard
            )

    def update_meta(self, bucket: str, key: str, meta: EntryMeta) -> Entry:
        """Replace the metadata of the entry of ``key``, its payload untouched; return the entry.

        For a revalidation (a ``304``): ``entry.json`` is replaced by one
        rename, so a reader sees the old metadata or the new; it is fsynced
        only under ``fsync="always"``, since losing it in a crash loses only
        the news that the entry was current (an ``entry.json`` the crash
        emptied is a broken entry: a miss). The payload's
        description (kind, file name, size, hashes) is kept from the entry
        on disk whatever ``meta`` says. Raises `CacheError` when there is no
        entry. Call it while holding ``lock(bucket, key)``.

        Example:
            >>> import dataclasses, hashlib, tempfile
            >>> cache = Cache(tempfile.mkdtemp())
            >>> bucket, key = BUCKET_DOWNLOADS, url_key("https://example.org/a.txt")
            >>> with cache.lock(bucket, key), cache.temp_dir(bucket, key) as work:
            ...     _ = (work / "a.txt").write_bytes(b"a")
            ...     meta = EntryMeta(url="https://example.org/a.txt", size=1,
            ...                      sha256=hashlib.sha256(b"a").hexdigest(), created=1.0)
            ...     entry = cache.commit_file(bucket, key, work / "a.txt", filename="a.txt",
            ...                               meta=meta)
            ...     entry = cache.update_meta(bucket, key, dataclasses.replace(meta, checked=2.0))
            >>> entry.meta.checked, entry.path.read_bytes()
            (2.0, b'a')
        """
        from surefetch._cache.publish import write_meta

        entry_dir = self._entry_dir(bucket, key)
        entry = read_entry(entry_dir)
        if entry is None:
            raise CacheError(f"Cannot update the metadata of {entry_dir}: there is no entry")
        old = entry.meta
        meta = dataclasses.replace(
            meta,
            kind=old.kind,
            filename=old.filename,
            files=old.files,
            manifest=old.manifest,
            size=old.size,
            sha256=old.sha256,
            content_key=old.content_key,
            boot=old.boot,
        )
        write_meta(entry_dir, meta, entry_dir, policy=self.fs_policy, durable=self.syncs_files)
        return Entry(entry.path, meta)

    # --- maintenance ------------------------------------------------------------

    def verify(self, *, fix: bool = False) -> VerifyReport:
        """Re-hash every entry; report the corrupt ones and, with ``fix``, remove them.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).verify().sound
            True
        """
        from surefetch._cache.maintenance import verify

        return verify(self, fix=fix)

    def prune(self, *, older_than: float = 3600.0) -> PruneReport:
        """Remove what killed writers left: temporaries and partials whose key is not locked.

        Also the staging directories that killed ``extract_to`` fetches left
        beside their targets, found through their claims here, once their
        owner is dead. Only items unchanged for ``older_than`` seconds go,
        and never an entry, so it is safe while other processes use the cache.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).prune().removed
            0
        """
        from surefetch._cache.maintenance import prune

        return prune(self, older_than=older_than)

    def clean(self) -> CleanReport:
        """Empty the cache: wait for the writers at work, then remove every entry and temporary.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).clean().entries
            0
        """
        from surefetch._cache.maintenance import clean

        return clean(self)

    def info(self) -> CacheInfo:
        """Entries and bytes per bucket, and in the temporary area.

        Example:
            >>> import tempfile
            >>> Cache(tempfile.mkdtemp()).info().entries
            0
        """
        from surefetch._cache.maintenance import info

        return info(self)
