"""The surefetch cache: `surefetch.cache`.

Entries live in versioned buckets, keyed by content hash (`content_key`) or by
URL (`url_key`). An entry appears only complete, by one atomic rename; a
per-key inter-process lock gives single flight; `Cache.verify`, `Cache.prune`,
`Cache.clean` and `Cache.info` maintain it while other processes use it. The
layout is described in ``surefetch._cache.store``.

Example:
    >>> import tempfile
    >>> from surefetch.cache import BUCKET_DOWNLOADS, Cache, url_key
    >>> cache = Cache(tempfile.mkdtemp())
    >>> cache.lookup(BUCKET_DOWNLOADS, url_key("https://example.org/data.csv")) is None
    True
"""

from __future__ import annotations

from surefetch._cache.entry import Entry, EntryMeta
from surefetch._cache.reports import (
    BucketInfo,
    CacheInfo,
    CleanReport,
    CorruptEntry,
    PruneReport,
    VerifyReport,
)
from surefetch._cache.store import (
    BUCKET_ARCHIVES,
    BUCKET_DOWNLOADS,
    BUCKET_WHEELS,
    LAYOUT_VERSION,
    Cache,
    content_key,
    default_root,
    normalize_url,
    url_key,
)
from surefetch._errors import CacheError, LockTimeout

__all__ = [
    "BUCKET_ARCHIVES",
    "BUCKET_DOWNLOADS",
    "BUCKET_WHEELS",
    "LAYOUT_VERSION",
    "BucketInfo",
    "Cache",
    "CacheError",
    "CacheInfo",
    "CleanReport",
    "CorruptEntry",
    "Entry",
    "EntryMeta",
    "LockTimeout",
    "PruneReport",
    "VerifyReport",
    "content_key",
    "default_root",
    "normalize_url",
    "url_key",
]
