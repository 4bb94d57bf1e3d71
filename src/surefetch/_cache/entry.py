"""Cache entries: their metadata and its JSON form, reading them, the hashes `verify` checks."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from surefetch._cache.layout import (
    KIND_FILE,
    META_FORMAT,
    parse_record,
    payload_path as layout_payload_path,
    read_record,
)
from surefetch._errors import CacheError
from surefetch._log import logger

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class EntryMeta:
    """What is known about a cache entry; stored as ``entry.json`` beside its payload.

    ``url``
        Where the content came from, already redacted by the caller (no
        credentials).
    ``size``, ``sha256``
        Of the downloaded file. For a tree (an extracted archive) they
        describe the archive it came from.
    ``created``
        When the entry was made (``time.time()``).
    ``kind``, ``filename``, ``files``, ``manifest``
        Filled in by the cache when it commits the entry: ``"file"`` with the
        payload's file name, or ``"tree"`` with the number of files and the
        manifest hash that `Cache.verify` recomputes (see `tree_manifest`).
    ``content_key``
        True when the entry's key is its ``sha256`` (`content_key`): `Cache.verify`
        then also checks that the key and the recorded hash agree. Written to
        ``entry.json`` only when true, so older readers see the same format.
    ``headers``, ``checked``, ``fresh_until``, ``immutable``
        HTTP freshness (`surefetch._cache.freshness`): the response headers
        that caching needs (lower-case names: ``etag``, ``last-modified``,
        ``cache-control``, ``expires``, ``date``), when the entry was last
        received or revalidated (``checked``; None for an entry written
        before it was recorded: then ``created`` counts), until when the
        server's lifetime makes it fresh (None: nothing bounds it), and
        whether the server called it immutable. Each is written only when
        present, so an ``entry.json`` without them still reads.
    ``boot``
        The boot of the OS that published a file entry without fsync
        (`surefetch._cache.durability`); None once it is known to be on the
        disk. Written only when set.

    Example:
        >>> meta = EntryMeta(url="https://example.org/a.txt", size=2, sha256="ab" * 32,
        ...                  created=0.0, filename="a.txt")
        >>> EntryMeta.from_json(meta.to_json()) == meta
        True
    """

    url: str
    size: int
    sha256: str
    created: float
    kind: str = KIND_FILE
    filename: str | None = None
    files: int | None = None
    manifest: str | None = None
    content_key: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    checked: float | None = None
    fresh_until: float | None = None
    immutable: bool = False
    boot: str | None = None

    @property
    def last_checked(self) -> float:
        """When the server last vouched for the entry: ``checked``, else ``created``.

        Example:
            >>> EntryMeta(url="u", size=0, sha256="", created=5.0).last_checked
            5.0
        """
        return self.created if self.checked is None else self.checked

    def to_json(self) -> bytes:
        """The ``entry.json`` content.

        Example:
            >>> import json
            >>> meta = EntryMeta(url="https://h/a.txt", size=2, sha256="ab" * 32, created=0.0,
            ...                  filename="a.txt")
            >>> json.loads(meta.to_json())["kind"]
            'file'
        """
        record = {
            "format": META_FORMAT,
            "kind": self.kind,
            "url": self.url,
            "size": self.size,
            "sha256": self.sha256,
            "created": self.created,
            "filename": self.filename,
            "files": self.files,
            "manifest": self.manifest,
        }
        if self.content_key:
            record["content_key"] = True
        # The command line's hit path finds these by their text: keep them flat numbers.
        if self.headers:
            record["headers"] = dict(self.headers)
        if self.checked is not None:
            record["checked"] = self.checked
        if self.fresh_until is not None:
            record["fresh_until"] = self.fresh_until
        if self.immutable:
            record["immutable"] = True
        if self.boot is not None:
            record["boot"] = self.boot
        # One item a line, like indent=1, but through json's C encoder, which
        # indent turns off (half the time: about 10 µs of every commit).
        return json.dumps(record, separators=(",\n ", ": ")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> EntryMeta:
        """Parse ``entry.json``; raises ValueError when it is not one we wrote.

        Example:
            >>> meta = EntryMeta.from_json(
            ...     b'{"format": 1, "kind": "file", "url": "https://h/a.txt", "size": 2,'
            ...     b' "sha256": "ab", "created": 0, "filename": "a.txt"}'
            ... )
            >>> meta.filename, meta.created
            ('a.txt', 0.0)
        """
        return _from_record(parse_record(data))


@dataclass(frozen=True, slots=True)
class Entry:
    """A complete cache entry: ``path`` is the cached file, or the root of the extracted tree.

    Example:
        >>> from surefetch.cache import Cache
        >>> import tempfile
        >>> Cache(tempfile.mkdtemp()).lookup("downloads", "ab" * 16) is None
        True
    """

    path: Path
    meta: EntryMeta


def read_meta(entry_dir: str) -> EntryMeta | None:
    """The metadata of the entry in ``entry_dir``; None when absent; ValueError when unreadable."""
    record = read_record(entry_dir)
    return None if record is None else _from_record(record)


def read_entry(entry_dir: str) -> Entry | None:
    """The entry in ``entry_dir``, or None when there is none or it is broken (logged).

    Example:
        >>> import tempfile
        >>> read_entry(tempfile.mkdtemp()) is None
        True
    """
    try:
        meta = read_meta(entry_dir)
    except ValueError as error:
        logger.warning(
            "Ignoring the unreadable cache entry %s (%s); "
            "`surefetch cache verify --fix` removes it",
            entry_dir,
            error,
        )
        return None
    if meta is None:
        return None
    payload = payload_path(entry_dir, meta)
    try:
        os.lstat(payload)
    except OSError:
        logger.warning(
            "Ignoring the cache entry %s: its payload is missing; "
            "`surefetch cache verify --fix` removes it",
            entry_dir,
        )
        return None
    return Entry(Path(payload), meta)


def _from_record(record: dict[str, object]) -> EntryMeta:
    """An `EntryMeta` from a record that `parse_record` checked."""
    return EntryMeta(
        url=str(record["url"]),
        size=int(record["size"]),  # type: ignore[call-overload]
        sha256=str(record["sha256"]),
        created=float(record["created"]),  # type: ignore[arg-type]
        kind=str(record["kind"]),
        filename=record["filename"],  # type: ignore[arg-type]
        files=record["files"],  # type: ignore[arg-type]
        manifest=record["manifest"],  # type: ignore[arg-type]
        content_key=record["content_key"] is True,
        headers=tuple(record["headers"].items()),  # type: ignore[attr-defined]
        checked=record["checked"],  # type: ignore[arg-type]
        fresh_until=record["fresh_until"],  # type: ignore[arg-type]
        immutable=record["immutable"] is True,
        boot=record["boot"],  # type: ignore[arg-type]
    )


def payload_path(entry_dir: str, meta: EntryMeta) -> str:
    """Where the payload of an entry is: ``file/<filename>`` or ``tree``."""
    return layout_payload_path(entry_dir, meta.kind, meta.filename)


def file_sha256(path: str) -> tuple[str, int]:
    """The sha256 (hex) and size of a file.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"abc")
        >>> file_sha256(f.name)[1]
        3
    """
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        while True:
            count = file.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def tree_manifest(root: str) -> tuple[str, int, int]:
    """The manifest hash, file count and total bytes of the tree at ``root``.

    The manifest is a sha256 over every item, sorted by relative path: a file
    with its sha256, a symbolic link with its target, a directory by its name.
    So a changed, missing or added file, link or directory changes it.
    Anything else (a device, a FIFO) raises `CacheError`.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.txt").write_text("a")
        >>> tree_manifest(str(d))[1:]
        (1, 1)
    """
    records: list[tuple[str, str, str]] = []
    files = total = 0
    pending = [("", root)]
    while pending:
        relative_dir, directory = pending.pop()
        with os.scandir(directory) as items:
            for item in items:
                relative = f"{relative_dir}{item.name}"
                mode = item.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    records.append((relative, "link", os.readlink(item.path)))
                elif stat.S_ISDIR(mode):
                    records.append((relative, "dir", ""))
                    pending.append((relative + "/", item.path))
                elif stat.S_ISREG(mode):
                    sha256, size = file_sha256(item.path)
                    records.append((relative, "file", sha256))
                    files += 1
                    total += size
                else:
                    raise CacheError(f"Cannot store {item.path}: not a file, directory or link")
    digest = hashlib.sha256()
    for relative, kind, value in sorted(records):
        digest.update(f"{kind}\0{relative}\0{value}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), files, total
