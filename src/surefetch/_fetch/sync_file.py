"""A file fetched on the standard-library transport: the synchronous single-download path.

The same pipeline as `surefetch._fetch.file` on aiohttp (cache lookup, the
key's lock, lookup again, download with retries, resume and mirrors, verify,
commit), with every decision taken from the same shared code
(`surefetch._fetch.url_download`, `surefetch._http.exchange`, the retry
engine's `retrying` loop, `commit_download`), and the bytes moved by
`http.client` on the process's kept connections. No event loop, no thread
per download, and neither asyncio nor aiohttp is imported, which is what
makes a command-line miss start about as fast as Python itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from surefetch._cache.entry import Entry
from surefetch._cache.freshness import forbids_storing
from surefetch._errors import ConfigError
from surefetch._fetch.commit import (
    commit_download,
    keep_uncached,
    revalidated,
    revalidation,
    stale_entry,
)
from surefetch._fetch.disk_full import dropping_partial_when_full
from surefetch._fetch.options import FetchArgs, Options
from surefetch._fetch.request import (
    FetchResult,
    Resolved,
    deadline_passed,
    downloaded,
    hit_result,
    offline_miss,
    resolve,
)
from surefetch._fetch.single_flight import single_flight_sync
from surefetch._fetch.url_download import (
    NotModified,
    Revalidation,
    UrlDownload,
    all_failed,
    conditional_for,
    not_modified_at,
    scrubbing,
    url_failed,
    verify,
)
from surefetch._http.headers import basic_authorization
from surefetch._http.partial import Follower, PartialFile
from surefetch._http.stats import DownloadStats
from surefetch._http.stdlib_pool import Pool, pool
from surefetch._http.sync_attempt import (
    DeadlinePassed,
    DownloadStopped,
    Stop,
    Timeouts,
    download_attempt_sync,
)
from surefetch._log import logger as _logger
from surefetch._retry.budget import no_wait_active
from surefetch._retry.loops import retrying
from surefetch._retry.policy import RetryPolicy
from surefetch._url import ParsedURL, filename_from_url


def fetch_file_sync(
    args: FetchArgs, *, resolved: Resolved | None = None, stop: Stop | None = None
) -> FetchResult:
    """Fetch the file that ``args`` describe (no extraction) on the standard-library transport.

    ``resolved``, when given, is the request of ``args`` resolved by a caller
    that has just found no usable entry for it: the lookup before the lock
    is not made again. ``stop``, set from another thread, ends the download
    (`DownloadStopped`), its bytes kept in the partial file.
    """
    options = args.options()
    looked_up = resolved is not None
    if resolved is None:
        resolved = resolve(args.request())
    return fetch_resolved_sync(resolved, options, looked_up=looked_up, stop=stop)


def fetch_resolved_sync(
    resolved: Resolved,
    options: Options,
    *,
    looked_up: bool = False,
    connections: Pool = pool,
    stop: Stop | None = None,
) -> FetchResult:
    """Fetch the file of ``resolved`` with ``options``, over the kept ``connections``.

    ``looked_up`` and ``stop``: see `fetch_file_sync`. The policy's deadline
    counts from now. `surefetch._fetch.sync_many` calls it from its threads,
    with one set of options and one pool for the whole batch.
    """
    started = time.monotonic()
    deadline = options.policy.deadline
    timeouts = Timeouts(
        connect=options.connect_timeout,
        read=options.read_timeout,
        deadline=None if deadline is None else started + deadline,
    )
    store = _SyncFileStore(resolved, options, started, timeouts, connections, stop)
    try:
        return single_flight_sync(
            store, refresh=options.refresh, offline=options.offline, looked_up=looked_up
        )
    except DeadlinePassed:
        assert deadline is not None
        raise deadline_passed(resolved, deadline) from None


def download_any_sync(
    resolved: Resolved,
    *,
    options: Options,
    stats: DownloadStats,
    reader: Follower,
    stop: Stop,
    started: float,
) -> tuple[ParsedURL, PartialFile, str]:
    """`surefetch._fetch.mirrors.download_any` on the standard-library transport, blocking.

    For a streaming extraction: run it in a worker thread, ``reader``
    following the bytes; `Stop.set` ends it (`DownloadStopped`) from another
    thread. Its retry loops share the budget of the loop that encloses it
    (a worker thread started by `asyncio.to_thread` carries the context).
    """
    deadline = options.policy.deadline
    timeouts = Timeouts(
        connect=options.connect_timeout,
        read=options.read_timeout,
        deadline=None if deadline is None else started + deadline,
    )
    partial_path = options.cache.partial_path(resolved.bucket, resolved.key)
    try:
        found = _download_any(
            resolved,
            partial_path,
            options=options,
            stats=stats,
            timeouts=timeouts,
            connections=pool,
            revalidate=None,
            reader=reader,
            stop=stop,
        )
    except DeadlinePassed:
        assert deadline is not None
        raise deadline_passed(resolved, deadline) from None
    assert not isinstance(found, NotModified)  # nothing was asked conditionally
    return found


class _SyncFileStore:
    """The `SyncStore` of a downloaded file in the downloads bucket.

    A plain class: every miss imports it, and a dataclass costs about a
    millisecond of start-up to define.
    """

    __slots__ = ("connections", "options", "resolved", "seen", "started", "stop", "timeouts")

    def __init__(
        self,
        resolved: Resolved,
        options: Options,
        started: float,
        timeouts: Timeouts,
        connections: Pool,
        stop: Stop | None = None,
    ) -> None:
        self.resolved = resolved
        self.options = options
        self.started = started
        self.timeouts = timeouts
        self.connections = connections
        self.stop = stop
        # The entry the last lookup found: under the lock it stays what it was,
        # so the download's revalidation and commit need not look again.
        self.seen: list[tuple[Entry | None]] = []

    def lock(self) -> AbstractContextManager[None]:
        return self.options.cache.lock(self.resolved.bucket, self.resolved.key)

    def lookup(self) -> FetchResult | None:
        entry = self.options.cache.lookup(self.resolved.bucket, self.resolved.key)
        self.seen[:] = [(entry,)]
        return hit_result(
            self.resolved,
            entry,
            started=self.started,
            max_age=self.options.max_age,
            offline=self.options.offline,
        )

    def offline_error(self) -> Exception:
        return offline_miss(self.resolved, self.options.cache)

    def produce(self) -> FetchResult:
        resolved, options, cache = self.resolved, self.options, self.options.cache
        seen = self.seen[0] if self.seen else None
        stale = stale_entry(resolved, options, seen=seen)
        if stale is None:  # a stale entry's lookup said it is revalidated
            _logger.info(
                "Cache miss: %s is not in %s; downloading it", resolved.primary.redacted, cache.root
            )
        partial_path = cache.partial_path(resolved.bucket, resolved.key)
        with dropping_partial_when_full(partial_path):
            stats = DownloadStats()
            found = _download_any(
                resolved,
                partial_path,
                options=options,
                stats=stats,
                timeouts=self.timeouts,
                connections=self.connections,
                revalidate=revalidation(stale),
                stop=self.stop,
            )
            if isinstance(found, NotModified):
                assert stale is not None
                return revalidated(resolved, options, stale, stats, started=self.started)
            url, partial, digest = found
            if forbids_storing(stats.caching):
                path = keep_uncached(resolved, options, partial.path, filename_from_url(url.url))
                partial.drop_sidecar()
                return downloaded(
                    resolved, path, digest, partial.size, stats=stats, started=self.started
                )
            entry = commit_download(
                resolved,
                options,
                partial,
                digest,
                url=url.redacted,
                store=lambda meta: cache.commit_file(
                    resolved.bucket,
                    resolved.key,
                    partial.path,
                    filename=filename_from_url(url.url),
                    meta=meta,
                ),
                caching=stats.caching,
                seen=seen,
            )
            partial.drop_sidecar()
            return downloaded(
                resolved, entry.path, digest, partial.size, stats=stats, started=self.started
            )


def _download_any(
    resolved: Resolved,
    partial_path: Path,
    *,
    options: Options,
    stats: DownloadStats,
    timeouts: Timeouts,
    connections: Pool,
    revalidate: Revalidation | None,
    reader: Follower | None = None,
    stop: Stop | None = None,
) -> tuple[ParsedURL, PartialFile, str] | NotModified:
    """`surefetch._fetch.mirrors.download_unless_current`, blocking: the URL, else each mirror.

    Returns the URL that worked, the complete partial file (verified) and
    its sha256, or `NotModified` when the URL of a stale copy answered its
    revalidation with ``304``.
    """
    policy = scrubbing(options.policy, resolved.redactor)
    failures: list[tuple[ParsedURL, BaseException]] = []
    for index, url in enumerate(resolved.urls):
        stats.urls_tried.append(url.redacted)
        try:
            partial = _download_one_url(
                url,
                partial_path,
                options=options,
                policy=policy,
                stats=stats,
                independent=index > 0,
                resolved=resolved,
                timeouts=timeouts,
                connections=connections,
                conditional=conditional_for(revalidate, url),
                reader=reader,
                stop=stop,
            )
            if partial is None:
                return not_modified_at(url)
            digest = verify(partial, url=url, sha256=resolved.sha256, size=resolved.size)
        except (ConfigError, DeadlinePassed, DownloadStopped):
            raise
        except Exception as error:
            url_failed(resolved, index, error, failures, partial_path)
            continue
        return url, partial, digest
    raise all_failed(failures, resolved.redactor)


def _download_one_url(
    url: ParsedURL,
    partial_path: Path,
    *,
    options: Options,
    policy: RetryPolicy,
    stats: DownloadStats,
    independent: bool,
    resolved: Resolved,
    timeouts: Timeouts,
    connections: Pool,
    conditional: Mapping[str, str] | None,
    reader: Follower | None = None,
    stop: Stop | None = None,
) -> PartialFile | None:
    """Download ``url`` into the partial file with retries and resume (see `UrlDownload`).

    None when ``conditional`` headers were answered with ``304 Not Modified``.
    """
    authorization = basic_authorization(url.username, url.password)
    partial = PartialFile.open(
        partial_path,
        url=url.url,
        label=url.redacted,
        reader=reader,
        synced_when_stored=options.cache.syncs_files,
    )
    download = UrlDownload(url, partial, policy=policy, sha256=resolved.sha256, size=resolved.size)
    if download.found_complete():
        return partial
    first = True
    not_modified = False
    try:
        for attempt in retrying(
            policy=download.policy, operation=f"GET {url.redacted}", independent=independent
        ):
            with attempt:
                if stop is not None:
                    stop.check()
                if not first:
                    options.host_budget.acquire_sync(url.host, skip_wait=no_wait_active())
                first = False
                if download.before_attempt():
                    stats.attempts += 1
                    not_modified = download_attempt_sync(
                        url,
                        partial,
                        authorization=authorization,
                        checked=download.checked,
                        allow_insecure_redirects=options.allow_insecure_redirects,
                        stats=stats,
                        progress=options.progress,
                        timeouts=timeouts,
                        conditional=conditional,
                        stop=stop,
                        connections=connections,
                    )
                download.after_attempt(not_modified=not_modified)
    finally:
        partial.close()
    if not_modified:
        partial.discard()
        return None
    return partial
