"""Cache entries: their metadata, its JSON form, and the hashes that `verify` recomputes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from surefetch._errors import CacheError

META_NAME = "entry.json"
META_FORMAT = 1
KIND_FILE = "file"
KIND_TREE = "tree"
_CHUNK = 1 << 20
_META_READ = 1 << 16


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

    def to_json(self) -> bytes:
        """The ``entry.json`` content."""
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
        return json.dumps(record, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> EntryMeta:
        """Parse ``entry.json``; raises ValueError when it is not one we wrote."""
        record = json.loads(data)
        if not isinstance(record, dict) or record.get("format") != META_FORMAT:
            raise ValueError("not a surefetch entry.json of format 1")
        kind = record.get("kind")
        url, size, sha256 = record.get("url"), record.get("size"), record.get("sha256")
        created, filename = record.get("created"), record.get("filename")
        files, manifest = record.get("files"), record.get("manifest")
        if not (
            isinstance(url, str)
            and type(size) is int
            and isinstance(sha256, str)
            and isinstance(created, (int, float))
        ):
            raise ValueError("url, size, sha256 or created is missing or of the wrong type")
        if kind == KIND_FILE:
            if not isinstance(filename, str) or not is_valid_filename(filename):
                raise ValueError(f"invalid filename {filename!r}")
        elif kind == KIND_TREE:
            if type(files) is not int or not isinstance(manifest, str):
                raise ValueError("files or manifest is missing or of the wrong type")
        else:
            raise ValueError(f"unknown kind {kind!r}")
        return cls(url, size, sha256, float(created), kind, filename, files, manifest)


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


def is_valid_filename(name: str) -> bool:
    """Whether ``name`` is a single, ordinary path component."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and len(name.encode("utf-8", "surrogateescape")) <= 255
    )


_O_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # Windows would translate line ends


def read_meta(entry_dir: str) -> EntryMeta | None:
    """The metadata of the entry in ``entry_dir``; None when absent; ValueError when unreadable."""
    # os.open and os.read, not open(): this is most of the cost of a cache
    # hit, and skipping the buffered file object halves it.
    try:
        fd = os.open(entry_dir + os.sep + META_NAME, _O_READ)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = [os.read(fd, _META_READ)]
        while len(chunks[-1]) == _META_READ:
            chunks.append(os.read(fd, _META_READ))
    finally:
        os.close(fd)
    return EntryMeta.from_json(b"".join(chunks))


def payload_path(entry_dir: str, meta: EntryMeta) -> str:
    """Where the payload of an entry is: ``file/<filename>`` or ``tree``."""
    if meta.kind == KIND_FILE:
        return f"{entry_dir}{os.sep}{KIND_FILE}{os.sep}{meta.filename}"
    return f"{entry_dir}{os.sep}{KIND_TREE}"


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
