"""The pipeline: cache lookup -> lock -> download -> verify -> persist.

`afetch` is the core; `fetch` drives it from synchronous code. A download
runs under its cache key's inter-process lock, so N processes asking for the
same missing file make one download and the others use its entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surefetch._config import (
    CONCURRENCY,
    CONNECT_TIMEOUT,
    HTTP_TIMEOUT,
    OFFLINE,
    resolve as resolve_setting,
)
from surefetch._errors import ConfigError, DownloadError, IntegrityError, OfflineError
from surefetch._fetch.request import (
    FetchRequest,
    FetchResult,
    Resolved,
    cached_result,
    open_cache,
    resolve,
)
from surefetch._http.download import DownloadStats, PartialFile, ProgressCallback, download_attempt
from surefetch._http.host_budget import HostRetryBudget, default_host_budget
from surefetch._retry.budget import default_policy, no_wait_active
from surefetch._retry.classify import Decision
from surefetch._retry.loops import aretrying
from surefetch._retry.policy import RetryPolicy
from surefetch._run_sync import run_sync
from surefetch._url import ParsedURL, Redactor, filename_from_url, redact_url

if TYPE_CHECKING:
    import aiohttp

    from surefetch._cache.store import Cache
    from surefetch._extract.archive import ExtractLimits, GrowingFileReader

logger = logging.getLogger("surefetch")


@dataclass(frozen=True, slots=True)
class _Options:
    """Everything a fetch needs besides the request, resolved once."""

    cache: Cache
    policy: RetryPolicy
    offline: bool
    refresh: bool
    host_budget: HostRetryBudget
    progress: ProgressCallback | None
    connect_timeout: float
    read_timeout: float
    limits: ExtractLimits | None = None


def _options(
    *,
    cache: Cache | str | os.PathLike[str] | None,
    policy: RetryPolicy | None,
    retries: int | None,
    offline: bool | None,
    refresh: bool,
    progress: ProgressCallback | None,
    limits: ExtractLimits | None = None,
) -> _Options:

    cache = open_cache(cache)
    policy = policy or default_policy()
    if retries is not None:
        policy = policy.replace(retries=retries)
    return _Options(
        cache=cache,
        policy=policy,
        offline=resolve_setting(OFFLINE) if offline is None else offline,
        refresh=refresh,
        host_budget=default_host_budget,
        progress=progress,
        connect_timeout=resolve_setting(CONNECT_TIMEOUT),
        read_timeout=resolve_setting(HTTP_TIMEOUT),
        limits=limits,
    )


class _Sessions:
    """One aiohttp session for a batch of fetches, made only on the first cache miss."""

    def __init__(self, options: _Options, *, limit: int = 100) -> None:
        self._options = options
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None:
            import ssl

            import aiohttp

            from surefetch._version import __version__

            # Verification is always on. aiohttp's own verified context already
            # honours SSL_CERT_FILE through OpenSSL; one of our own is made only
            # when the variable is set, to be explicit, since making one costs
            # tens of milliseconds per process.
            cafile = os.environ.get("SSL_CERT_FILE") or None
            context: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=cafile) if cafile else True
            )
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self._options.connect_timeout,
                sock_read=self._options.read_timeout,
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=context),
                timeout=timeout,
                trust_env=True,
                auto_decompress=False,
                # Older aiohttp reads 64 KiB at a time unless told otherwise.
                read_bufsize=1 << 20,
                headers={"User-Agent": f"surefetch/{__version__}"},
            )
            # aiohttp quietly repeats an idempotent request once when the
            # connection drops: a retry loop hidden inside ours, which would
            # make a 3-retry policy send up to 8 requests and the attempt
            # count lie. Every retry goes through the shared budget instead.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@contextlib.asynccontextmanager
async def _locked(cache: Cache, bucket: str, key: str) -> AsyncIterator[None]:
    """Hold the key's inter-process lock without blocking the event loop.

    The lock is taken and released in a worker thread, since filelock blocks.
    """
    holder = cache.lock(bucket, key)
    await asyncio.to_thread(holder.__enter__)
    try:
        yield
    finally:
        await asyncio.to_thread(holder.__exit__, None, None, None)


def _scrubbing(policy: RetryPolicy, redactor: Redactor) -> RetryPolicy:
    """``policy`` whose decisions' reasons (which reach the log) carry no secrets."""
    classify = policy.classify

    def scrubbed(error: BaseException) -> Decision:
        decision = classify(error)
        return Decision(decision.retry, redactor.scrub(decision.reason), decision.after)

    return policy.replace(classify=scrubbed)


def _basic_authorization(url: ParsedURL) -> str | None:
    """The Authorization header for credentials given in the URL, if any."""
    if url.username is None:
        return None
    import base64

    pair = f"{url.username}:{url.password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


async def _download_one_url(
    url: ParsedURL,
    partial_path: Path,
    *,
    sessions: _Sessions,
    options: _Options,
    policy: RetryPolicy,
    stats: DownloadStats,
    independent: bool,
    reader: GrowingFileReader | None,
) -> PartialFile:
    """Download ``url`` into the partial file with retries and resume.

    An attempt that failed after moving the download forward is followed at
    once, without a backoff wait: the server was answering, the connection
    broke, and the next request continues where this one stopped. It still
    counts against the retry budget.
    """
    authorization = _basic_authorization(url)
    partial = await asyncio.to_thread(PartialFile.open, partial_path, url=url.url)
    if reader is not None:
        partial.attach(reader)
    if partial.complete:
        logger.info("Using the complete download of %s from an earlier attempt", url.redacted)
        return partial
    if partial.size:
        logger.info("Found %d bytes of %s from an earlier attempt", partial.size, url.redacted)
    size_before_attempt = partial.size
    classify = policy.classify

    def classify_with_progress(error: BaseException) -> Decision:
        decision = classify(error)
        if decision.retry and decision.after is None and partial.size > size_before_attempt:
            return Decision.retry_after(0.0, f"{decision.reason}; resuming at byte {partial.size}")
        return decision

    attempt_policy = policy.replace(classify=classify_with_progress)
    first = True
    try:
        async for attempt in aretrying(
            policy=attempt_policy, operation=f"GET {url.redacted}", independent=independent
        ):
            with attempt:
                if not first:
                    await options.host_budget.acquire(url.host, skip_wait=no_wait_active())
                first = False
                stats.attempts += 1
                size_before_attempt = partial.size
                await download_attempt(
                    sessions.get(),
                    url,
                    partial,
                    authorization=authorization,
                    stats=stats,
                    progress=options.progress,
                )
    finally:
        partial.close()
    return partial


def _verify(partial: PartialFile, *, url: ParsedURL, sha256: str | None, size: int | None) -> str:
    actual = partial.hasher.hexdigest()
    if size is not None and partial.size != size:
        partial.discard()
        raise IntegrityError(
            f"Size mismatch for {url.redacted}: expected {size} bytes, got {partial.size}"
        )
    if sha256 is not None and actual != sha256:
        partial.discard()
        raise IntegrityError(
            f"Hash mismatch for {url.redacted}: expected sha256 {sha256}, "
            f"got {actual} ({partial.size} bytes)"
        )
    return actual


async def _fetch(request: FetchRequest, *, sessions: _Sessions, options: _Options) -> FetchResult:
    started = time.monotonic()
    if request.extract_to is not None:
        from surefetch._extract.archive import DEFAULT_LIMITS
        from surefetch._fetch.archive import fetch_archive_to

        return await fetch_archive_to(
            request,
            target=Path(request.extract_to),
            sessions=sessions,
            options=options,
            limits=options.limits or DEFAULT_LIMITS,
            started=started,
        )
    if request.extract:
        from surefetch._extract.archive import DEFAULT_LIMITS
        from surefetch._fetch.archive import fetch_archive

        return await fetch_archive(
            request,
            sessions=sessions,
            options=options,
            limits=options.limits or DEFAULT_LIMITS,
            started=started,
        )
    from surefetch._cache.entry import EntryMeta

    resolved = resolve(request)
    cache = options.cache
    if not options.refresh:
        hit = cached_result(resolved, cache, started=started)
        if hit is not None:
            return hit
    if options.offline:
        raise offline_miss(resolved, cache)
    async with _locked(cache, resolved.bucket, resolved.key):
        if not options.refresh:
            hit = await asyncio.to_thread(cached_result, resolved, cache, started=started)
            if hit is not None:
                return hit
        stats = DownloadStats()
        url, partial, digest = await _download_any(
            resolved, sessions=sessions, options=options, stats=stats
        )
        meta = EntryMeta(url=url.redacted, size=partial.size, sha256=digest, created=time.time())
        if options.refresh:
            await asyncio.to_thread(cache.remove, resolved.bucket, resolved.key)
        entry = await asyncio.to_thread(
            cache.commit_file,
            resolved.bucket,
            resolved.key,
            partial.path,
            filename=filename_from_url(url.url),
            meta=meta,
        )
        partial.sidecar.unlink(missing_ok=True)
    return downloaded(resolved, entry.path, digest, partial.size, stats=stats, started=started)


def offline_miss(resolved: Resolved, cache: Cache) -> OfflineError:
    """The error for a cache miss in offline mode."""
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


async def _download_any(
    resolved: Resolved,
    *,
    sessions: _Sessions,
    options: _Options,
    stats: DownloadStats,
    reader: GrowingFileReader | None = None,
) -> tuple[ParsedURL, PartialFile, str]:
    """Download from the URL or, failing that, each mirror in turn; verify the bytes.

    Returns the URL that worked, the complete partial file and its sha256.
    Must run under the key's lock: the partial file is shared by attempts.
    """
    partial_path = options.cache.partial_path(resolved.bucket, resolved.key)
    policy = _scrubbing(options.policy, resolved.redactor)
    failures: list[tuple[ParsedURL, BaseException]] = []
    urls = resolved.urls
    for index, url in enumerate(urls):
        stats.urls_tried.append(url.redacted)
        try:
            partial = await _download_one_url(
                url,
                partial_path,
                sessions=sessions,
                options=options,
                policy=policy,
                stats=stats,
                independent=index > 0,
                reader=reader,
            )
            digest = _verify(partial, url=url, sha256=resolved.sha256, size=resolved.size)
        except (ConfigError, asyncio.CancelledError):
            raise
        except Exception as error:
            failures.append((url, error))
            if index + 1 < len(urls):
                logger.info(
                    "Trying mirror %s after %s failed: %s",
                    urls[index + 1].redacted,
                    url.redacted,
                    resolved.redactor.scrub(_first_line(error)),
                )
            continue
        return url, partial, digest
    raise _download_failed(failures, resolved.redactor)


async def _fetch_within_deadline(
    request: FetchRequest, *, sessions: _Sessions, options: _Options
) -> FetchResult:
    """`_fetch`, stopped when the policy's deadline passes, even in the middle of a body.

    The retry engine already declines a retry whose wait would cross the
    deadline; this also bounds the attempt that is running. What was
    received stays in the partial file, so a later fetch resumes it.
    """
    deadline = options.policy.deadline
    if deadline is None:
        return await _fetch(request, sessions=sessions, options=options)
    try:
        return await asyncio.wait_for(
            _fetch(request, sessions=sessions, options=options), timeout=deadline
        )
    except asyncio.TimeoutError as error:
        shown = resolve(request).primary.redacted
        raise DownloadError(
            f"Failed to download {shown}: the deadline of {deadline:g}s passed"
        ) from error


def _download_failed(
    failures: Sequence[tuple[ParsedURL, BaseException]], redactor: Redactor
) -> DownloadError:
    last = failures[-1][1]
    if len(failures) == 1:
        error = DownloadError(f"Failed to download {failures[0][0].redacted}")
    else:
        tried = "; ".join(
            f"{url.redacted} ({redactor.scrub(_first_line(e))})" for url, e in failures
        )
        error = DownloadError(f"Failed to download from {len(failures)} URLs: {tried}")
    error.__cause__ = last
    error.failures = tuple(failures)  # type: ignore[attr-defined]
    return error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


async def afetch_result(
    url: str,
    *,
    sha256: str | None = None,
    size: int | None = None,
    mirrors: Sequence[str] = (),
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    progress: ProgressCallback | None = None,
    extract: bool = False,
    strip_components: int = 0,
    limits: ExtractLimits | None = None,
    extract_to: str | os.PathLike[str] | None = None,
) -> FetchResult:
    """Like `afetch`, but return a `FetchResult`: the path and what the fetch took.

    The result holds the redacted URL, the sha256 and size, whether it came
    from the cache, the attempts and retries made and the bytes resumed; its
    `FetchResult.to_json` is what ``surefetch fetch --json`` prints.

    Example:
        >>> import asyncio, tempfile, surefetch
        >>> from surefetch.testing import ChaosServer
        >>> with ChaosServer(files={"/a.txt": b"hello"}) as server:
        ...     url, cache = server.url("/a.txt"), tempfile.mkdtemp()
        ...     result = asyncio.run(surefetch.afetch_result(url, cache=cache))
        >>> result.from_cache, result.attempts, result.size
        (False, 1, 5)
    """
    options = _options(
        cache=cache,
        policy=policy,
        retries=retries,
        offline=offline,
        refresh=refresh,
        progress=progress,
        limits=limits,
    )
    sessions = _Sessions(options)
    try:
        request = FetchRequest(
            url,
            sha256=sha256,
            mirrors=tuple(mirrors),
            size=size,
            extract=extract or extract_to is not None,
            strip_components=strip_components,
            extract_to=None if extract_to is None else os.fspath(extract_to),
        )
        return await _fetch_within_deadline(request, sessions=sessions, options=options)
    finally:
        await sessions.close()


async def afetch(
    url: str,
    *,
    sha256: str | None = None,
    size: int | None = None,
    mirrors: Sequence[str] = (),
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    progress: ProgressCallback | None = None,
    extract: bool = False,
    strip_components: int = 0,
    limits: ExtractLimits | None = None,
    extract_to: str | os.PathLike[str] | None = None,
) -> Path:
    """Download ``url`` into the cache (or find it there) and return the cached file's path.

    ``sha256`` (hex) is verified while the body streams and keys the cache by
    content; ``size`` is checked too. ``mirrors`` are tried in order when the
    URL fails. ``cache`` is a `Cache` or its root (default: ``SUREFETCH_CACHE_DIR``
    or the user cache directory). ``policy``/``retries`` set the retry policy
    (default: ``SUREFETCH_HTTP_RETRIES``, else 3 retries). ``offline`` (default
    ``SUREFETCH_OFFLINE``) uses the cache only. ``refresh`` downloads again
    and replaces the entry. ``progress(received, total)`` is called as bytes
    arrive.

    With ``extract=True`` the file must be an archive (tar, tar.gz, tar.bz2,
    tar.xz, tar.zst, zip or wheel, told by name and magic bytes); it is
    extracted safely while it streams, ``strip_components`` leading path
    components are dropped from its members, ``limits`` (an `ExtractLimits`)
    bounds its size, file count and compression ratio, and the path returned
    is the cached, extracted tree. With ``extract_to`` (a directory that
    must not exist or be empty) the tree is extracted there instead, and the
    cache keeps the archive file, so doing it again needs no network.

    Raises `DownloadError` (with the cause chain, e.g. "Request failed after
    3 retries in 7.2s"), `IntegrityError` inside it for a hash mismatch,
    `OfflineError`, or `ConfigError` for a bad URL, hash or setting.

    Example:
        >>> import asyncio, surefetch
        >>> async def main() -> None:
        ...     path = await surefetch.afetch("https://example.org/data.csv")  # doctest: +SKIP
        >>> asyncio.iscoroutinefunction(surefetch.afetch)
        True
    """
    result = await afetch_result(
        url,
        sha256=sha256,
        size=size,
        mirrors=mirrors,
        cache=cache,
        policy=policy,
        retries=retries,
        offline=offline,
        refresh=refresh,
        progress=progress,
        extract=extract,
        strip_components=strip_components,
        limits=limits,
        extract_to=extract_to,
    )
    return result.path


def fetch(
    url: str,
    *,
    sha256: str | None = None,
    size: int | None = None,
    mirrors: Sequence[str] = (),
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    progress: ProgressCallback | None = None,
    extract: bool = False,
    strip_components: int = 0,
    limits: ExtractLimits | None = None,
    extract_to: str | os.PathLike[str] | None = None,
) -> Path:
    """Download ``url`` into the cache (or find it there) and return the cached file's path.

    The synchronous twin of `afetch`, with the same arguments; it also works
    when called from a thread whose event loop is running.

    Example:
        >>> import surefetch
        >>> path = surefetch.fetch("https://example.org/data.csv", retries=5)  # doctest: +SKIP
    """
    if not refresh:
        # A cache hit needs no event loop.
        request = FetchRequest(url, sha256=sha256, mirrors=tuple(mirrors), size=size)
        if not extract and extract_to is None:
            hit = cached_result(resolve(request), open_cache(cache), started=time.monotonic())
            if hit is not None:
                return hit.path
    return run_sync(
        afetch(
            url,
            sha256=sha256,
            size=size,
            mirrors=mirrors,
            cache=cache,
            policy=policy,
            retries=retries,
            offline=offline,
            refresh=refresh,
            progress=progress,
            extract=extract,
            strip_components=strip_components,
            limits=limits,
            extract_to=extract_to,
        )
    )


class FetchManyError(DownloadError):
    """Some downloads of a `fetch_many` failed; the others are cached.

    ``errors`` maps each failed URL (redacted) to its error; ``__cause__`` is
    the first failure in input order.

    Example:
        >>> error = FetchManyError({"https://h/b": OSError("gone")}, total=3)
        >>> str(error)
        '1 of 3 downloads failed: https://h/b'
    """

    def __init__(self, errors: dict[str, BaseException], total: int) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} of {total} downloads failed: {', '.join(errors)}")


async def afetch_many(
    requests: Iterable[str | FetchRequest],
    *,
    concurrency: int | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
) -> list[Path]:
    """Fetch many URLs in parallel (at most ``concurrency`` at once) over one connection pool.

    Returns the paths in input order. Every download runs to its end; if any
    failed, `FetchManyError` is raised after the rest are cached. Retries to a
    failing host are paced by a per-host budget, so hundreds of parallel
    downloads do not turn an outage into a retry storm. ``concurrency``
    defaults to the ``concurrency`` setting (``SUREFETCH_CONCURRENCY``, else a
    config file, else 16).

    Example:
        >>> import asyncio, surefetch
        >>> asyncio.run(surefetch.afetch_many([]))
        []
    """
    items = [r if isinstance(r, FetchRequest) else FetchRequest(r) for r in requests]
    if concurrency is None:
        concurrency = resolve_setting(CONCURRENCY)
    else:
        concurrency = CONCURRENCY.parse(concurrency, label="concurrency")
    if not items:
        return []
    options = _options(
        cache=cache, policy=policy, retries=retries, offline=offline, refresh=False, progress=None
    )
    sessions = _Sessions(options, limit=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: FetchRequest) -> FetchResult:
        async with gate:
            return await _fetch_within_deadline(item, sessions=sessions, options=options)

    try:
        outcomes = await asyncio.gather(*(one(i) for i in items), return_exceptions=True)
    finally:
        await sessions.close()
    errors: dict[str, BaseException] = {}
    paths: list[Path] = []
    for item, outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            errors[redact_url(item.url)] = outcome
        else:
            paths.append(outcome.path)
    if errors:
        failure = FetchManyError(errors, len(items))
        failure.__cause__ = next(iter(errors.values()))
        raise failure
    return paths


def fetch_many(
    requests: Iterable[str | FetchRequest],
    *,
    concurrency: int | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
) -> list[Path]:
    """The synchronous twin of `afetch_many`.

    Example:
        >>> import surefetch
        >>> surefetch.fetch_many([])
        []
    """
    return run_sync(
        afetch_many(
            requests,
            concurrency=concurrency,
            cache=cache,
            policy=policy,
            retries=retries,
            offline=offline,
        )
    )
