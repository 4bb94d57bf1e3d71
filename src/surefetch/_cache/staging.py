"""Staging directories outside the cache, claimed in it so that a dead owner's are found again.

``fetch(..., extract_to=DIR)`` extracts into a directory beside ``DIR``, so
that placing the finished tree is one rename: ``.<DIR's name>.surefetch-
staging-<random>``. A process killed meanwhile would leave that hidden tree
there for ever, since nothing else knows of it. So each staging directory is
claimed in the cache for its whole life::

    locks/staging~<digest>.lock   held by the owner while the directory exists
    tmp/staging~<digest>.claim    the directory's absolute path (UTF-8)

``<digest>`` is the first 32 hex digits of the sha256 of that path. The
owner takes the lock, writes the claim, then makes the directory; it removes
them in the opposite order. So a claim whose lock is free names the
directory of a dead process: `reap` removes it, `Cache.prune` finds every
claim without scanning the filesystem, and the next run for the same
``DIR`` reaps the siblings it sees (`reap_siblings`).

A staging directory the cache holds no claim for is left alone: it may be a
live one of a process that uses another cache.

Unlike the per-key locks (see `surefetch._cache.lock`), these lock files are
deleted once their claim is gone: a staging name is random and never used
again, so no process can be about to lock the same file as a live owner.
"""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Protocol

from surefetch._errors import RetriesExhausted
from surefetch._fs import ops as _fs, tree as _fs_tree
from surefetch._log import logger

#: Names in the temporary area (``.claim``) and the lock directory (``.lock``).
PREFIX = "staging~"
CLAIM_SUFFIX = ".claim"
LOCK_SUFFIX = ".lock"
#: What a staging directory's name holds between the target's name and the random part.
MARK = ".surefetch-staging-"
_DIGEST = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"\..*\.surefetch-staging-[0-9a-f]{16}", re.DOTALL)


class StagingCache(Protocol):
    """What staging uses of a cache: `surefetch.cache.Cache` satisfies it."""

    @property
    def tmp_dir(self) -> Path: ...

    @property
    def locks_dir(self) -> Path: ...

    lock_timeout: float

    def prepare(self) -> None: ...


def digest_of(path: str) -> str:
    """The digest that names a staging directory's claim and lock.

    Example:
        >>> len(digest_of("/work/.out.surefetch-staging-0123456789abcdef"))
        32
    """
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _claim_path(cache: StagingCache, digest: str) -> str:
    return os.path.join(cache.tmp_dir, f"{PREFIX}{digest}{CLAIM_SUFFIX}")


def _lock_path(cache: StagingCache, digest: str) -> str:
    return os.path.join(cache.locks_dir, f"{PREFIX}{digest}{LOCK_SUFFIX}")


class Staging:
    """A claimed staging directory beside ``target``: `open` makes it, `close` removes it.

    Example:
        >>> import pathlib, tempfile
        >>> from surefetch.cache import Cache
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> staging = Staging(Cache(root / "cache"), root / "out")
        >>> staging.open().name.startswith(".out.surefetch-staging-")
        True
        >>> staging.close()
        >>> sorted(p.name for p in root.iterdir())
        ['cache']
    """

    def __init__(self, cache: StagingCache, target: Path) -> None:
        self._cache = cache
        self._target = target
        self._release: ExitStack | None = None
        self.path: Path | None = None

    def open(self) -> Path:
        """Claim and make a fresh, empty staging directory; its path."""
        from surefetch._cache.lock import hold

        self._cache.prepare()
        parent = os.path.realpath(self._target.parent)
        while True:
            path = os.path.join(parent, f".{self._target.name}{MARK}{os.urandom(8).hex()}")
            digest = digest_of(path)
            lock = _lock_path(self._cache, digest)
            stack = ExitStack()
            try:
                # Nobody else holds a fresh name's lock but a pruner, for an instant.
                what = f"the staging directory {path}"
                stack.enter_context(hold(lock, timeout=self._cache.lock_timeout, what=what))
                made = _claim_and_make(_claim_path(self._cache, digest), path)
            except BaseException:
                stack.close()
                _unlink(lock)
                raise
            if made:
                self._release, self.path = stack, Path(path)
                return self.path
            stack.close()
            _unlink(lock)

    def close(self) -> None:
        """Remove the directory, then its claim; a directory that stays keeps its claim
        (for `prune`)."""
        path, release = self.path, self._release
        if path is None or release is None:
            return
        self.path, self._release = None, None
        digest = digest_of(str(path))
        with release:
            try:
                _fs.remove_tree(path)
            except (OSError, RetriesExhausted) as error:
                logger.warning("Could not remove %s (cache prune will): %s", path, error)
                return
            _unlink(_claim_path(self._cache, digest))
        _unlink(_lock_path(self._cache, digest))


def _claim_and_make(claim: str, path: str) -> bool:
    """Write the claim, then make the directory; False when the name is taken."""
    # Written in place, not by a rename: a claim torn by a kill names no
    # directory (it is made afterwards), and prune removes it like any other.
    fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        os.write(fd, path.encode("utf-8", "surrogateescape"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.mkdir(path, 0o700)
    except BaseException as error:
        _unlink(claim)
        if isinstance(error, FileExistsError):
            return False
        raise
    return True


def _unlink(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _read_claim(claim: str, digest: str) -> str | None:
    """The staging directory a claim names, if the claim is sound and names one."""
    try:
        with open(claim, "rb") as file:
            path = file.read(1 << 16).decode("utf-8", "surrogateescape")
    except (FileNotFoundError, IsADirectoryError):
        return None
    if not os.path.isabs(path) or not _NAME.fullmatch(os.path.basename(path)):
        return None
    # A claim names the very path it is named after, so a damaged or
    # planted one cannot send the removal anywhere else.
    return path if digest_of(path) == digest else None


def reap(cache: StagingCache, digest: str) -> int | None:
    """Remove the staging directory of claim ``digest`` if its owner is dead.

    Returns the bytes it held (0 when only the claim was left), or None when
    its owner is alive or it could not be removed.
    """
    from surefetch._cache.lock import try_hold

    if not _DIGEST.fullmatch(digest):
        return None
    claim, lock = _claim_path(cache, digest), _lock_path(cache, digest)
    with try_hold(lock) as held:
        if not held:
            return None
        path = _read_claim(claim, digest)
        size = 0
        if path is not None:
            try:
                size = _fs_tree.tree_size(path)
                _fs.remove_tree(path)
            except (OSError, RetriesExhausted) as error:
                logger.warning("Could not remove %s: %s", path, error)
                return None
            logger.info("Removed %s, left by a process that died", path)
        _unlink(claim)
    _unlink(lock)
    return size


def reap_orphan_lock(cache: StagingCache, name: str) -> None:
    """Delete the staging lock file ``name`` if it has no claim and nobody holds it.

    An owner takes its lock before writing the claim, and a process that
    waited for a lock (`Cache.clean`) leaves the file behind.
    """
    from surefetch._cache.lock import try_hold

    digest = name.removeprefix(PREFIX).removesuffix(LOCK_SUFFIX)
    if not (name.startswith(PREFIX) and name.endswith(LOCK_SUFFIX) and _DIGEST.fullmatch(digest)):
        return
    if os.path.exists(_claim_path(cache, digest)):
        return
    lock = _lock_path(cache, digest)
    with try_hold(lock) as held:
        if not held:
            return
    _unlink(lock)


def reap_siblings(cache: StagingCache, target: Path) -> None:
    """Remove the staging directories beside ``target`` that this cache claimed for
    processes now dead."""
    parent = os.path.realpath(target.parent)
    prefix = f".{target.name}{MARK}"
    try:
        with os.scandir(parent) as items:
            names = [item.name for item in items if item.name.startswith(prefix)]
    except OSError:
        return
    for name in names:
        digest = digest_of(os.path.join(parent, name))
        if os.path.exists(_claim_path(cache, digest)):
            reap(cache, digest)
