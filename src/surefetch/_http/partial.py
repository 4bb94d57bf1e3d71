"""A resumable partial download: the bytes so far, their running sha256, and a sidecar.

A partial download is a file in the cache's temporary area plus a small JSON
sidecar holding what the server said about it (its `Validator`: a digest of
the URL, ETag, Last-Modified, total size). The URL itself is not kept: its
query may hold a token, and the sidecar outlives a failed download. A
partial left by a killed process is picked up by the next one: its bytes are
hashed once from disk and the download continues if the validator still
matches. Whenever bytes are dropped, the log says how many and why.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Protocol

from surefetch._http.resume import Validator, url_digest
from surefetch._log import logger

# A body this small is not prepared for a resume by another process: for the
# thousands of small files of a fetch_many, the sidecar files would cost more
# than the bytes themselves.
SMALL_BODY = 1 << 20
_HASH_BLOCK = 1 << 20


class Follower(Protocol):
    """Something that reads a partial file while it grows (a streaming extraction)."""

    def advance(self, size: int) -> None:
        """The file now holds ``size`` bytes."""

    def rewind(self) -> None:
        """The file is about to restart from zero."""


class PartialFile:
    """The bytes of one download received so far, with their running sha256.

    Only touched under the cache key's lock, so one process at a time.
    """

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = path
        self.sidecar = path.with_name(path.name + ".json")
        self.label = label or path.name
        self.size = 0
        self.hasher = hashlib.sha256()
        self.validator: Validator | None = None
        # Bytes kept across a resume that no validator guarded: only the
        # final sha256 or size check can tell that they belong together.
        self.unguarded = False
        self.reader: Follower | None = None
        # Whether the cache will fsync the file when it stores it: only then
        # is it worth putting its bytes on disk while they arrive (`Writeback`).
        self.synced_when_stored = True
        self._file: Any = None
        # Whether the sidecar is known to be missing (under the key's lock
        # nobody else makes one): a small file's fetch then asks the
        # filesystem nothing about it after the first look.
        self._no_sidecar = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        url: str,
        label: str | None = None,
        reader: Follower | None = None,
        synced_when_stored: bool = True,
    ) -> PartialFile:
        """Pick up what an earlier attempt or process left for ``url``, or start empty.

        ``label`` (the URL as it may be shown) names the download in the log.
        ``reader`` (a streaming extraction) follows the bytes from the start,
        so that even the bytes dropped here are rewound under it first.
        ``synced_when_stored``: whether the cache fsyncs the file it becomes.
        """
        partial = cls(path, label=label)
        partial.reader = reader
        partial.synced_when_stored = synced_when_stored
        validator = partial._load_validator()
        why = None
        if validator is None:
            why = "no usable record of what the server said about them was found"
        elif validator.url_digest != url_digest(url):
            why = "they were downloaded from another URL"
        if why is not None or validator is None or not path.exists():
            partial.restart(why)
            return partial
        partial.validator = validator
        partial.unguarded = validator.if_range is None
        with path.open("rb") as existing:
            while block := existing.read(_HASH_BLOCK):
                partial.hasher.update(block)
                partial.size += len(block)
        if validator.total is not None and partial.size > validator.total:
            partial.restart(f"they are more than the {validator.total} bytes the server announced")
        if reader is not None:
            reader.advance(partial.size)
        return partial

    def _load_validator(self) -> Validator | None:
        """The sidecar's validator; None if it is missing, damaged or of an older format."""
        try:
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self._no_sidecar = True
            return None
        except (OSError, ValueError):
            return None
        names = {field.name for field in fields(Validator)}
        if not isinstance(data, dict) or set(data) != names:
            return None
        strings = (data["url_digest"], data["etag"], data["last_modified"])
        total = data["total"]
        if not isinstance(strings[0], str) or not all(
            value is None or isinstance(value, str) for value in strings[1:]
        ):
            return None
        if total is not None and (type(total) is not int or total < 0):
            return None
        return Validator(**data)

    @property
    def complete(self) -> bool:
        """Whether every byte the server announced is here (a finished download)."""
        total = self.validator.total if self.validator else None
        return total is not None and self.size == total

    def restart(self, why: str | None = None) -> None:
        """Drop the bytes received so far; if there are any, log how many and ``why``."""
        if why is not None:
            dropped = self.size or _size_on_disk(self.path)
            if dropped:
                logger.info("Discarding %d bytes of %s: %s", dropped, self.label, why)
        if self.reader is not None:
            # Before truncating: a reader must never see new bytes at old offsets.
            self.reader.rewind()
        self.close()
        # Left open for the bytes to come: one open of the file per download.
        try:
            self._file = self.path.open("wb", buffering=0)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb", buffering=0)
        self.drop_sidecar()
        self.size = 0
        self.hasher = hashlib.sha256()
        self.validator = None
        self.unguarded = False

    def set_validator(self, validator: Validator) -> None:
        """Record what the server said, before any body byte is written.

        It goes to the sidecar file only for bodies large enough to be worth
        resuming in another process: for a small one, a restart costs less
        than the file that would allow resuming it.
        """
        self.validator = validator
        if validator.total is not None and validator.total <= SMALL_BODY:
            self.drop_sidecar()
            return
        self._no_sidecar = False
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(asdict(validator)), encoding="utf-8")
        os.replace(tmp, self.sidecar)

    def drop_sidecar(self) -> None:
        """Remove the sidecar, if there may be one (once the download is committed, say)."""
        if not self._no_sidecar:
            self.sidecar.unlink(missing_ok=True)
            self._no_sidecar = True

    def append(self, chunk: bytes | memoryview) -> None:
        """Write ``chunk`` at the end and hash it: the two never disagree."""
        self.append_unhashed(chunk)
        self.hasher.update(chunk)

    def append_unhashed(self, chunk: bytes | memoryview) -> None:
        """Write ``chunk`` at the end; the caller hashes it, in order, before the hash is read.

        For a body loop that hashes on a second thread while it receives.
        """
        if self._file is None:
            self._file = self.path.open("ab", buffering=0)
        view = memoryview(chunk)
        while view:  # a short write (a full disk, a signal) must not lose bytes
            written = self._file.write(view)
            view = view[written:]
        self.size += len(chunk)
        if self.reader is not None:
            self.reader.advance(self.size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Remove the partial file and its sidecar."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.drop_sidecar()


def _size_on_disk(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
