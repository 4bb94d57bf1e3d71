"""What a fetch asks for and what it produced, and the cache-hit fast path.

Nothing here imports asyncio or the HTTP stack: a cache hit, from the
library's `fetch` or from the command line, is answered from this module
alone, which keeps ``surefetch fetch URL`` on a hit close to the start-up
time of Python itself.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surefetch._errors import ConfigError
from surefetch._log import INFO, logger as _logger
from surefetch._url import ParsedURL, Redactor, check_sha256, parse_url

if TYPE_CHECKING:
    from surefetch._cache.entry import Entry, EntryMeta
    from surefetch._cache.store import Cache
    from surefetch._config import Settings
    from surefetch._errors import DownloadError, OfflineError
    from surefetch._http.stats import DownloadStats


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One download for `fetch_many`: a URL with its expected hash and mirrors.

    Example:
        >>> FetchRequest("https://example.org/a.whl", sha256="ab" * 32).mirrors
        ()
    """

    url: str
    sha256: str | None = None
    mirrors: tuple[str, ...] = ()
    size: int | None = None
    extract: bool = False
    strip_components: int = 0
    extract_to: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch produced and what it took; the ``--json`` output.

    ``url`` is redacted. ``attempts`` counts requests made (0 on a cache
    hit); ``retries`` is ``attempts`` minus one per URL tried.
    ``from_cache`` says the bytes are the cached ones: a fresh hit, a
    revalidation the server answered with ``304`` (``revalidated``), or a
    stale entry served in offline mode (``stale``).

    Example:
        >>> result = FetchResult(path=Path("/c/a.whl"), url="https://example.org/a.whl",
        ...                      sha256="ab" * 32, size=3, from_cache=False, attempts=2, retries=1)
        >>> result.from_cache, result.retries
        (False, 1)
    """

    path: Path
    url: str
    sha256: str
    size: int
    from_cache: bool
    attempts: int = 0
    retries: int = 0
    resumed_bytes: int = 0
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    revalidated: bool = False
    stale: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with the documented keys (plus those of ``extra``).

        Example:
            >>> result = FetchResult(path=Path("/c/a.whl"), url="https://example.org/a.whl",
            ...                      sha256="ab" * 32, size=3, from_cache=True, elapsed_s=0.01234)
            >>> data = result.to_json()
            >>> data["url"], data["from_cache"], data["elapsed_s"]
            ('https://example.org/a.whl', True, 0.012)
        """
        return {
            "path": str(self.path),
            "url": self.url,
            "sha256": self.sha256,
            "size": self.size,
            "from_cache": self.from_cache,
            "revalidated": self.revalidated,
            "stale": self.stale,
            "attempts": self.attempts,
            "retries": self.retries,
            "resumed_bytes": self.resumed_bytes,
            "elapsed_s": round(self.elapsed_s, 3),
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class Resolved:
    """A checked `FetchRequest`: parsed URLs, normalised hash, cache bucket and key."""

    urls: tuple[ParsedURL, ...]
    sha256: str | None
    size: int | None
    bucket: str
    key: str
    redactor: Redactor

    @property
    def primary(self) -> ParsedURL:
        return self.urls[0]


def resolve(request: FetchRequest, *, bucket: str | None = None) -> Resolved:
    """Check ``request`` (raising `ConfigError`) and find its cache key.

    The key is the content hash when one is given, so that the same file from
    any URL or mirror is stored once, and the normalised URL's hash otherwise.
    """
    from surefetch._cache.layout import BUCKET_DOWNLOADS, content_key, url_key

    sha256 = check_sha256(request.sha256)
    urls = (parse_url(request.url), *(parse_url(m) for m in request.mirrors))
    if request.strip_components < 0:
        raise ConfigError(
            f"strip_components={request.strip_components} is not valid: expected 0 or more"
        )
    if request.size is not None and request.size < 0:
        raise ConfigError(f"size={request.size} is not valid: expected 0 or more bytes")
    key = content_key(sha256) if sha256 else url_key(urls[0].url)
    return Resolved(
        urls=urls,
        sha256=sha256,
        size=request.size,
        bucket=bucket or BUCKET_DOWNLOADS,
        key=key,
        redactor=Redactor([request.url, *request.mirrors]),
    )


def is_current(resolved: Resolved, meta: EntryMeta, *, max_age: float | None) -> bool:
    """Whether the entry ``meta`` may be served for ``resolved`` without asking the server.

    An entry keyed by its sha256 always may: its bytes cannot be out of
    date. A URL-keyed one while it is fresh (`surefetch._cache.freshness`).
    """
    if resolved.sha256 is not None:
        return True
    from surefetch._cache.freshness import is_fresh

    return is_fresh(
        now=time.time(),
        checked=meta.last_checked,
        fresh_until=meta.fresh_until,
        immutable=meta.immutable,
        max_age=max_age,
    )


def cached_result(
    resolved: Resolved,
    cache: Cache,
    *,
    started: float,
    max_age: float | None = None,
    offline: bool = False,
) -> FetchResult | None:
    """The `FetchResult` of a cache hit, or None on a miss.

    An entry whose recorded sha256 is not the one asked for is a miss: its
    bytes are not what the key promises (`must_replace` then clears it). A
    stale URL-keyed entry (see `is_current`) is a miss too, to be
    revalidated, unless ``offline``: then it is served, marked ``stale``,
    with a warning that says so.
    """
    return hit_result(
        resolved,
        cache.lookup(resolved.bucket, resolved.key),
        started=started,
        max_age=max_age,
        offline=offline,
    )


def hit_result(
    resolved: Resolved,
    entry: Entry | None,
    *,
    started: float,
    max_age: float | None = None,
    offline: bool = False,
) -> FetchResult | None:
    """`cached_result` of the ``entry`` already looked up for ``resolved`` (None: a miss)."""
    if entry is None:
        return None
    if resolved.sha256 is not None and entry.meta.sha256 != resolved.sha256:
        _logger.warning(
            "Ignoring the cache entry %s: it records sha256 %s, not %s; "
            "it will be downloaded again",
            entry.path,
            entry.meta.sha256,
            resolved.sha256,
        )
        return None
    stale = not is_current(resolved, entry.meta, max_age=max_age)
    if stale:
        checked = _ago(time.time() - entry.meta.last_checked)
        if not offline:
            _logger.info(
                "Cache entry of %s is stale (checked with the server %s ago); revalidating it",
                resolved.primary.redacted,
                checked,
            )
            return None
        _logger.warning(
            "Using a stale copy of %s (offline mode; last checked with the server %s ago): %s",
            resolved.primary.redacted,
            checked,
            entry.path,
        )
    elif _logger.isEnabledFor(INFO):
        _logger.info("Cache hit: %s is %s", resolved.primary.redacted, entry.path)
    return FetchResult(
        path=entry.path,
        url=resolved.primary.redacted,
        sha256=entry.meta.sha256,
        size=entry.meta.size,
        from_cache=True,
        elapsed_s=time.monotonic() - started,
        extra={} if entry.meta.files is None else {"files": entry.meta.files},
        stale=stale,
    )


def _ago(seconds: float) -> str:
    """A duration for a person: ``42s``, ``5m``, ``3h``, ``2d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{max(0.0, seconds):.0f}s"


def open_cache(
    cache: Cache | str | os.PathLike[str] | None, settings: Settings | None = None
) -> Cache:
    """``cache`` itself, or the `Cache` at that root (default: the configured one).

    ``settings``: the call's snapshot of the settings, read instead of
    resolving the cache's own settings one by one.
    """
    from surefetch._cache.store import Cache

    if isinstance(cache, Cache):
        return cache
    if settings is None:
        return Cache(cache)
    from surefetch._config import CACHE_DIR, FSYNC, LOCK_TIMEOUT

    return Cache(
        settings.get(CACHE_DIR) if cache is None else cache,
        lock_timeout=settings.get(LOCK_TIMEOUT),
        fsync=settings.get(FSYNC),
    )


def offline_miss(resolved: Resolved, cache: Cache) -> OfflineError:
    """The error for a cache miss in offline mode."""
    from surefetch._errors import OfflineError

    return OfflineError(
        f"{resolved.primary.redacted} is not in the cache at {cache.root} and offline mode is on"
    )


def downloaded(
    resolved: Resolved,
    path: Path,
    sha256: str,
    size: int,
    *,
    stats: DownloadStats,
    started: float,
    extra: dict[str, Any] | None = None,
) -> FetchResult:
    """The `FetchResult` of a fetch that downloaded: what it made and what it took."""
    return FetchResult(
        path=path,
        url=resolved.primary.redacted,
        sha256=sha256,
        size=size,
        from_cache=False,
        attempts=stats.attempts,
        retries=max(0, stats.attempts - len(stats.urls_tried)),
        resumed_bytes=stats.resumed_bytes,
        elapsed_s=time.monotonic() - started,
        extra=extra or {},
    )


def must_replace(
    resolved: Resolved, cache: Cache, *, refresh: bool, seen: tuple[Entry | None] | None = None
) -> bool:
    """Whether the entry of ``resolved`` must go before a new one is committed.

    On a refresh, when it records another sha256 than the one asked for,
    and when it is keyed by URL (it was stale, or it would have been a hit):
    a commit keeps an entry that is already there, which must not be a
    wrong or an old one. Call it while holding the key's lock. ``seen`` holds
    the entry that a lookup under this hold of the lock found, if one did:
    nobody else commits or removes it meanwhile.
    """
    if refresh:
        return True
    entry = cache.lookup(resolved.bucket, resolved.key) if seen is None else seen[0]
    if entry is None:
        return False
    # Under the lock, a URL-keyed entry still there was stale: the new download replaces it.
    return resolved.sha256 is None or entry.meta.sha256 != resolved.sha256


def deadline_passed(resolved: Resolved, deadline: float) -> DownloadError:
    """The error of a fetch whose policy's deadline passed while a download was running."""
    from surefetch._errors import DownloadError

    return DownloadError(
        f"Failed to download {resolved.primary.redacted}: the deadline of {deadline:g}s passed "
        "while the download was still running (the retry policy's deadline for the whole "
        "fetch, waits included: setting deadline, SUREFETCH_DEADLINE); what was received is "
        "kept, and the next fetch resumes it"
    )
