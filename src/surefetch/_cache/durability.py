"""When a file entry must be on the disk: before it appears, or by the end of its boot.

A process that is killed loses nothing that it wrote: the kernel holds the
data and writes it out. Only an OS crash or a power loss can lose writes that
were not fsynced, and either one ends the boot. So under the ``lazy`` mode of
the ``fsync`` setting a file entry is published without fsync and stamped in
its ``entry.json`` with the boot that wrote it (`layout.current_boot`). Within that
boot the entry is exactly what was written and verified. In a later boot the
first lookup checks the payload's size and sha256 against the metadata
(`confirm`) before trusting it: what it reads then comes from the disk, so a
sound payload is on the disk for good, and the stamp is dropped. A payload
that a crash damaged counts as missing and is downloaded again.

Where the boot cannot be identified (no ``/proc/sys/kernel/random/boot_id``,
that is, outside Linux), every entry is fsynced before it appears, as under
``always``.
"""

from __future__ import annotations

import os

from surefetch._cache.layout import current_boot
from surefetch._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from surefetch._cache.entry import Entry


def sound_entry(entry_dir: str, *, durable: bool = False) -> Entry | None:
    """The entry in ``entry_dir`` that may be used, or None: `read_entry`, then one check.

    An entry that another boot published without fsync is checked against
    its metadata first (`confirm`): a crash may have lost part of it. One
    from this boot, or a synced one, is used as read; with ``durable`` (the
    ``always`` mode), one that this boot published without fsync is synced
    first (`settle`), since its path may be handed to a program that reads
    it after a restart.

    Example:
        >>> import tempfile
        >>> sound_entry(tempfile.mkdtemp()) is None
        True
    """
    from surefetch._cache.entry import read_entry

    entry = read_entry(entry_dir)
    if entry is None or entry.meta.boot is None:
        return entry
    if entry.meta.boot == current_boot():
        return settle(entry_dir, entry) if durable else entry
    return confirm(entry_dir, entry)


def settle(entry_dir: str, entry: Entry) -> Entry:
    """``entry``, published without fsync in this boot, made durable as ``always`` makes one.

    The payload, its directory and a new ``entry.json`` without the stamp
    are fsynced, then the entry directory and the one holding its name, so
    that the entry is on the disk before its path is returned. The stamp is
    dropped relative to the entry directory opened at the start, as in
    `confirm`. Where that cannot be done (a read-only cache), the entry is
    returned as it is, stamped: a restart checks it.

    Example:
        >>> import hashlib, pathlib, tempfile
        >>> from surefetch._cache.entry import EntryMeta, read_entry
        >>> from surefetch._cache.publish import write_meta
        >>> entry_dir = tempfile.mkdtemp()
        >>> (pathlib.Path(entry_dir) / "file").mkdir()
        >>> _ = (pathlib.Path(entry_dir) / "file" / "a.txt").write_bytes(b"a")
        >>> meta = EntryMeta(url="https://h/a.txt", size=1, sha256=hashlib.sha256(b"a").hexdigest(),
        ...                  created=0.0, filename="a.txt", boot=current_boot())
        >>> write_meta(entry_dir, meta, entry_dir, policy=None)
        >>> settle(entry_dir, read_entry(entry_dir)).meta.boot, read_entry(entry_dir).meta.boot
        (None, None)
    """
    import dataclasses

    from surefetch._cache.entry import Entry, payload_path
    from surefetch._fs.ops import fsync_dir

    meta = entry.meta
    if not {os.open, os.rename, os.unlink} <= os.supports_dir_fd:
        return entry  # stamps are written only where the boot is known: Linux has dir_fd
    relative = os.path.relpath(payload_path(entry_dir, meta), entry_dir)
    try:
        directory = os.open(entry_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return entry  # it went away meanwhile: what was read is still whole
    try:
        # Relative to the directory opened first: an entry put at this path
        # meanwhile is not the one synced, nor given this one's metadata.
        for name in (relative, os.path.dirname(relative)):
            fd = os.open(name, os.O_RDONLY, dir_fd=directory)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        settled = dataclasses.replace(meta, boot=None)
        if not _rewrite_meta(directory, settled.to_json(), entry_dir):
            return entry
        os.fsync(directory)
    except OSError as error:
        logger.debug("Could not sync the cache entry %s: %s", entry_dir, error)
        return entry
    finally:
        os.close(directory)
    fsync_dir(os.path.dirname(entry_dir))
    return Entry(entry.path, settled)


def confirm(entry_dir: str, entry: Entry) -> Entry | None:
    """``entry``, stamped by another boot, checked against its metadata; None when damaged.

    The payload's size and sha256 must match ``entry.json``. A sound entry's
    stamp is then dropped by rewriting ``entry.json`` (fsynced) relative to
    the entry directory opened at the start, so that an entry another process
    put at ``entry_dir`` meanwhile is never given this one's metadata. Where
    that cannot be done (no ``dir_fd`` support, a read-only cache), the entry
    is returned as checked and the next process checks it again.

    Example:
        >>> import dataclasses, hashlib, pathlib, tempfile
        >>> from surefetch._cache.entry import Entry, EntryMeta, read_entry
        >>> from surefetch._cache.publish import write_meta
        >>> entry_dir = tempfile.mkdtemp()
        >>> (pathlib.Path(entry_dir) / "file").mkdir()
        >>> _ = (pathlib.Path(entry_dir) / "file" / "a.txt").write_bytes(b"a")
        >>> meta = EntryMeta(url="https://h/a.txt", size=1, sha256=hashlib.sha256(b"a").hexdigest(),
        ...                  created=0.0, filename="a.txt", boot="0" * 36)
        >>> write_meta(entry_dir, meta, entry_dir, policy=None)
        >>> confirm(entry_dir, read_entry(entry_dir)).meta.boot, read_entry(entry_dir).meta.boot
        (None, None)
        >>> _ = (pathlib.Path(entry_dir) / "file" / "a.txt").write_bytes(b"b")
        >>> write_meta(entry_dir, meta, entry_dir, policy=None)
        >>> confirm(entry_dir, read_entry(entry_dir)) is None
        True
    """
    import dataclasses

    from surefetch._cache.entry import Entry, payload_path
    from surefetch._cache.layout import KIND_FILE

    meta = entry.meta
    if meta.kind != KIND_FILE or meta.filename is None:
        return entry  # trees are never stamped; one that says so is left to `verify`
    relative = os.path.relpath(payload_path(entry_dir, meta), entry_dir)
    by_fd = {os.open, os.rename, os.unlink} <= os.supports_dir_fd
    try:
        directory = os.open(entry_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if by_fd else -1
    except OSError:
        return None  # it went away: a miss
    try:
        problem = _payload_problem(relative, meta.size, meta.sha256, directory, entry_dir)
        if problem is not None:
            logger.warning(
                "Not using the cache entry %s, written before the system restarted: %s "
                "(a crash before it reached the disk); it is downloaded again",
                entry_dir,
                problem,
            )
            return None
        confirmed = dataclasses.replace(meta, boot=None)
        if directory >= 0:
            _rewrite_meta(directory, confirmed.to_json(), entry_dir)
        return Entry(entry.path, confirmed)
    finally:
        if directory >= 0:
            os.close(directory)


def _payload_problem(
    relative: str, size: int, sha256: str, directory: int, entry_dir: str
) -> str | None:
    """What is wrong with the payload, or None when its size and sha256 match."""
    from surefetch._cache.layout import light_sha256

    try:
        if directory >= 0:
            fd = os.open(relative, os.O_RDONLY | getattr(os, "O_BINARY", 0), dir_fd=directory)
        else:
            path = os.path.join(entry_dir, relative)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as error:
        return f"its payload cannot be read ({error.strerror})"
    try:
        found = os.fstat(fd).st_size
        if found != size:
            return f"its payload has {found} bytes, {size} were stored"
        import hashlib

        digest = hashlib.sha256() if size > 1 << 16 else light_sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    except OSError as error:
        return f"its payload cannot be read ({error.strerror})"
    finally:
        os.close(fd)
    if digest.hexdigest() != sha256:
        return "its payload does not match its sha256"
    return None


def _rewrite_meta(directory: int, data: bytes, entry_dir: str) -> bool:
    """Replace ``entry.json`` in the open ``directory`` by ``data``, synced; whether it was.

    A failure is logged.
    """
    from surefetch._cache.layout import META_NAME

    temporary = f".{META_NAME}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=directory)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        # POSIX rename replaces; os.replace is the same call, but not listed in supports_dir_fd.
        os.rename(temporary, META_NAME, src_dir_fd=directory, dst_dir_fd=directory)
    except OSError as error:
        # A read-only cache, say: the entry is sound and used; the next process checks it again.
        import contextlib

        logger.debug("Could not record that %s was checked: %s", entry_dir, error)
        with contextlib.suppress(OSError):  # never made, or the directory is read-only
            os.unlink(temporary, dir_fd=directory)
        return False
    return True
