"""The results of cache maintenance: what `Cache.verify`, `prune`, `clean` and `info` return.

Immutable values, apart from the operations that make them (in `maintenance`)
so that the store can name them in its signatures without importing those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CorruptEntry:
    """An entry that failed verification: where it is and why.

    Example:
        >>> bad = CorruptEntry("downloads", "ab" * 16, Path("/c/entry"), "entry.json is missing")
        >>> f"{bad.bucket} {bad.key[:4]}: {bad.reason}"
        'downloads abab: entry.json is missing'
    """

    bucket: str
    key: str
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `Cache.verify`: entries checked, the corrupt ones, how many were removed.

    Example:
        >>> bad = CorruptEntry("downloads", "ab" * 16, Path("/c/entry"), "entry.json is missing")
        >>> report = VerifyReport(checked=5, corrupt=(bad,), removed=1)
        >>> report.sound, [entry.reason for entry in report.corrupt]
        (False, ['entry.json is missing'])
    """

    checked: int
    corrupt: tuple[CorruptEntry, ...]
    removed: int

    @property
    def sound(self) -> bool:
        """Whether every entry checked out.

        Example:
            >>> VerifyReport(checked=5, corrupt=(), removed=0).sound
            True
        """
        return not self.corrupt


@dataclass(frozen=True, slots=True)
class PruneReport:
    """The outcome of `Cache.prune`: what was removed and the bytes it held.

    Example:
        >>> report = PruneReport(temporaries=2, partials=1, trash=0, bytes=4096)
        >>> f"removed {report.removed} items, freed {report.bytes} bytes"
        'removed 3 items, freed 4096 bytes'
    """

    temporaries: int
    partials: int
    trash: int
    bytes: int
    #: Staging directories that killed ``fetch --extract`` runs left beside their targets.
    staging: int = 0

    @property
    def removed(self) -> int:
        """Items removed in all.

        Example:
            >>> PruneReport(temporaries=2, partials=1, trash=1, bytes=4096, staging=1).removed
            5
        """
        return self.temporaries + self.partials + self.trash + self.staging


@dataclass(frozen=True, slots=True)
class CleanReport:
    """The outcome of `Cache.clean`: entries removed and the bytes they held.

    Example:
        >>> from surefetch.cache import Cache
        >>> import tempfile
        >>> Cache(tempfile.mkdtemp()).clean()
        CleanReport(entries=0, bytes=0)
    """

    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class BucketInfo:
    """The entries of one bucket (of one layout version) and their size on disk.

    Example:
        >>> info = BucketInfo(bucket="wheels", version=1, entries=3, bytes=1500)
        >>> f"{info.bucket}-v{info.version}: {info.entries} entries, {info.bytes} bytes"
        'wheels-v1: 3 entries, 1500 bytes'
    """

    bucket: str
    version: int
    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """What `Cache.info` found: per bucket, and in the temporary area.

    Example:
        >>> from surefetch.cache import Cache
        >>> import tempfile
        >>> info = Cache(tempfile.mkdtemp()).info()
        >>> info.buckets, info.temporary_items
        ((), 0)
    """

    root: Path
    buckets: tuple[BucketInfo, ...]
    temporary_items: int
    temporary_bytes: int

    @property
    def entries(self) -> int:
        """Entries in every bucket.

        Example:
            >>> buckets = (BucketInfo("wheels", 1, 3, 1500), BucketInfo("archives", 1, 2, 500))
            >>> CacheInfo(Path("/c"), buckets, temporary_items=0, temporary_bytes=0).entries
            5
        """
        return sum(bucket.entries for bucket in self.buckets)

    @property
    def bytes(self) -> int:
        """Bytes of every entry (not counting the temporary area).

        Example:
            >>> buckets = (BucketInfo("wheels", 1, 3, 1500), BucketInfo("archives", 1, 2, 500))
            >>> CacheInfo(Path("/c"), buckets, temporary_items=1, temporary_bytes=99).bytes
            2000
        """
        return sum(bucket.bytes for bucket in self.buckets)
