"""The asynchronous API: `afetch`, `afetch_result` and `afetch_many`.

A fetch resolves its settings once (`Options`), opens an HTTP session only
on its first cache miss, and hands the request to the pipeline for its kind
of entry: a file, a tree in the cache, or a tree in the caller's directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from surefetch._fetch.many import FetchManyError as FetchManyError, batch, paths_or_raise, unique
from surefetch._fetch.options import FetchArgs, Options, make_options
from surefetch._fetch.request import FetchRequest, FetchResult, deadline_passed, resolve
from surefetch._http.session import Sessions

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from surefetch._cache.store import Cache
    from surefetch._extract.limits import ExtractLimits
    from surefetch._http.stats import ProgressCallback
    from surefetch._retry.policy import RetryPolicy


async def fetch_with(args: FetchArgs) -> FetchResult:
    """The fetch that ``args`` describe.

    A plain file on the standard-library transport (the ``transport``
    setting, as for `fetch`) is fetched in a worker thread (`_in_a_thread`).
    Otherwise it uses the session that the running event loop keeps
    (surefetch's loop thread for the synchronous API, or the caller's loop),
    so connections stay alive from call to call; see `Sessions`.
    """
    from surefetch._fetch.transport import on_stdlib

    if on_stdlib(args):
        return await _in_a_thread(args)
    options = args.options()
    sessions = options.sessions(keep=True)
    try:
        return await _fetch_within_deadline(args.request(), sessions=sessions, options=options)
    finally:
        await sessions.close()


async def _in_a_thread(args: FetchArgs) -> FetchResult:
    """`surefetch._fetch.sync_file.fetch_file_sync` of ``args``, in a worker thread.

    The synchronous pipeline costs less per file than the event loop's (no
    hop to a thread for each file operation, `http.client`'s lighter
    requests), over the process's kept connections. The thread runs in a
    copy of the caller's context, so an enclosing retry loop's budget is
    shared; progress is reported on the caller's loop; a cancelled call
    stops its download at once (its bytes stay in the partial file, for the
    next fetch to resume).
    """
    import contextvars
    import dataclasses
    import functools

    from surefetch._fetch.sync_file import fetch_file_sync
    from surefetch._http.sync_attempt import Stop

    loop = asyncio.get_running_loop()
    progress = args.progress
    if progress is not None:
        callback = progress

        def on_loop(done: int, total: int | None) -> None:
            loop.call_soon_threadsafe(callback, done, total)

        args = dataclasses.replace(args, progress=on_loop)
    stop = Stop()
    job = functools.partial(fetch_file_sync, args, stop=stop)
    future = loop.run_in_executor(_workers(), contextvars.copy_context().run, job)
    try:
        return await future
    except asyncio.CancelledError:
        stop.set()
        raise


_executor: ThreadPoolExecutor | None = None


def _workers() -> ThreadPoolExecutor:
    """The threads of `_in_a_thread`: as many as the ``concurrency`` setting, made once.

    As many files download at once as aiohttp's connection limit let before.
    """
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        from surefetch._config import CONCURRENCY, resolve as resolve_setting

        _executor = ThreadPoolExecutor(
            max_workers=resolve_setting(CONCURRENCY), thread_name_prefix="surefetch-afetch"
        )
        if hasattr(os, "register_at_fork"):
            # A forked child has none of the parent's threads: it makes its own.
            os.register_at_fork(after_in_child=_forget_workers)
    return _executor


def _forget_workers() -> None:
    global _executor
    _executor = None


async def _fetch(request: FetchRequest, *, sessions: Sessions, options: Options) -> FetchResult:
    """Hand ``request`` to the pipeline for its kind of entry."""
    started = time.monotonic()
    if not request.extract:
        from surefetch._fetch.file import fetch_file

        return await fetch_file(request, sessions=sessions, options=options, started=started)
    from surefetch._extract.archive import DEFAULT_LIMITS

    limits = options.limits or DEFAULT_LIMITS
    if request.extract_to is not None:
        from surefetch._fetch.archive import fetch_archive_to

        return await fetch_archive_to(
            request,
            target=Path(request.extract_to),
            sessions=sessions,
            options=options,
            limits=limits,
            started=started,
        )
    from surefetch._fetch.archive import fetch_archive

    return await fetch_archive(
        request, sessions=sessions, options=options, limits=limits, started=started
    )


async def _fetch_within_deadline(
    request: FetchRequest, *, sessions: Sessions, options: Options
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
    except asyncio.TimeoutError:
        # The TimeoutError and the CancelledError under it say nothing more: dropped.
        raise deadline_passed(resolve(request), deadline) from None


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
    allow_insecure_redirects: bool | None = None,
    max_age: float | None = None,
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
    return await fetch_with(FetchArgs(**locals()))


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
    allow_insecure_redirects: bool | None = None,
    max_age: float | None = None,
) -> Path:
    """Download ``url`` into the cache (or find it there) and return the cached file's path.

    ``sha256`` (hex) is verified while the body streams and keys the cache by
    content; ``size`` is checked too. ``mirrors`` are tried in order when the
    URL fails. ``cache`` is a `Cache` or its root (default: ``SUREFETCH_CACHE_DIR``
    or the user cache directory). ``policy``/``retries`` set the retry policy
    (default: ``SUREFETCH_HTTP_RETRIES``, else 3 retries). ``offline`` (default
    ``SUREFETCH_OFFLINE``) uses the cache only. ``refresh`` downloads again
    and replaces the entry. ``progress(received, total)`` is called on the
    caller's event loop as bytes arrive. A plain file (no extraction) is
    downloaded in a worker thread on the standard-library transport, the
    loop free meanwhile (setting ``transport``; see the guide's Transports);
    cancelling the call stops it. Redirects are followed (at most 10), but
    never from ``https`` to plain ``http``, which would fetch in plaintext
    what was asked for over TLS, unless ``allow_insecure_redirects`` is true
    (default: ``SUREFETCH_ALLOW_INSECURE_REDIRECTS``, else off).

    A file cached by URL (no ``sha256``) is served while it is fresh by the
    server's ``Cache-Control``/``Expires`` (RFC 9111, see the docs'
    freshness rules); a stale one is revalidated with a conditional request
    (a ``304`` keeps it, a ``200`` replaces it), and served as it is in
    offline mode, with a warning. ``max_age`` (seconds; default
    ``SUREFETCH_MAX_AGE``, else the server decides) overrides the server's
    lifetime: 0 checks every time. A response marked ``no-store`` is not
    cached: the path returned is then in the cache's temporary area, for
    the caller to read or move, and `Cache.prune` removes it an hour on.

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
    result = await fetch_with(FetchArgs(**locals()))
    return result.path


async def afetch_many(
    requests: Iterable[str | FetchRequest],
    *,
    concurrency: int | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    allow_insecure_redirects: bool | None = None,
) -> list[Path]:
    """Fetch many URLs in parallel (at most ``concurrency`` at once) over one connection pool.

    Returns the paths in input order. Every download runs to its end; if any
    failed, `FetchManyError` is raised after the rest are cached. Retries to a
    failing host are paced by a per-host budget, so hundreds of parallel
    downloads do not turn an outage into a retry storm. ``concurrency``
    defaults to the ``concurrency`` setting (``SUREFETCH_CONCURRENCY``, else a
    config file, else 16); the other arguments are those of `afetch`.

    Example:
        >>> import asyncio, surefetch
        >>> asyncio.run(surefetch.afetch_many([]))
        []
    """
    items, concurrency = batch(requests, concurrency)
    if not items:
        return []
    options = make_options(
        cache=cache,
        policy=policy,
        retries=retries,
        offline=offline,
        refresh=False,
        progress=None,
        allow_insecure_redirects=allow_insecure_redirects,
    )
    sessions = options.sessions(limit=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: FetchRequest) -> FetchResult:
        async with gate:
            return await _fetch_within_deadline(item, sessions=sessions, options=options)

    distinct = unique(items)
    try:
        results = await asyncio.gather(*(one(i) for i in distinct), return_exceptions=True)
    finally:
        await sessions.close()
    return paths_or_raise(items, dict(zip(distinct, results, strict=True)))
