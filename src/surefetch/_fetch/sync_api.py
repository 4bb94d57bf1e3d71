"""The synchronous API: `fetch` and `fetch_many`, driving the asynchronous core.

A cache hit through `fetch` is answered here without an event loop: this
module imports neither asyncio nor the HTTP stack until a download is needed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from surefetch._fetch.options import FetchArgs, resolve_max_age
from surefetch._fetch.request import (
    FetchRequest,
    FetchResult,
    Resolved,
    cached_result,
    open_cache,
    resolve,
)
from surefetch._fetch.transport import on_stdlib as on_stdlib

if TYPE_CHECKING:
    from surefetch._cache.store import Cache
    from surefetch._extract.limits import ExtractLimits
    from surefetch._http.stats import ProgressCallback
    from surefetch._retry.policy import RetryPolicy


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
    allow_insecure_redirects: bool | None = None,
    max_age: float | None = None,
) -> Path:
    """Download ``url`` into the cache (or find it there) and return the cached file's path.

    The synchronous twin of `afetch`, with the same arguments; it also works
    when called from a thread whose event loop is running, and from many
    threads at once. A single file is downloaded in the calling thread on
    the standard library's ``http.client``, over connections kept alive from
    one call to the next (the ``transport`` setting, ``SUREFETCH_TRANSPORT``,
    chooses: ``auto``, ``stdlib`` or ``aiohttp``); an extraction, or the
    aiohttp transport, runs on surefetch's own event loop thread (then
    ``progress`` is called on that thread), started on the first such call
    and stopped at interpreter exit.

    Example:
        >>> import surefetch
        >>> path = surefetch.fetch("https://example.org/data.csv", retries=5)  # doctest: +SKIP
    """
    args = FetchArgs(**locals())
    if not refresh and not extract and extract_to is None:
        # A cache hit needs no event loop, nor asyncio.
        from surefetch._config import OFFLINE, Settings

        settings = Settings()
        resolved = resolve(args.request())
        opened = open_cache(cache, settings)
        max_age = resolve_max_age(max_age, settings)
        offline = settings.get(OFFLINE) if offline is None else offline
        hit = cached_result(
            resolved, opened, started=time.monotonic(), max_age=max_age, offline=offline
        )
        if hit is not None:
            return hit.path
        # The miss goes on with what was just resolved and opened, not again.
        import dataclasses

        args = dataclasses.replace(args, cache=opened, offline=offline)
        return fetch_result(args, resolved=resolved).path
    return fetch_result(args).path


def fetch_result(args: FetchArgs, *, resolved: Resolved | None = None) -> FetchResult:
    """The `FetchResult` of the fetch that ``args`` describe, from synchronous code.

    A single file goes over the transport that `on_stdlib` picks; the rest
    runs the asynchronous core on surefetch's loop thread. ``resolved``:
    see `fetch_file_sync`.
    """
    if on_stdlib(args):
        from surefetch._fetch.sync_file import fetch_file_sync

        return fetch_file_sync(args, resolved=resolved)
    from surefetch._fetch.async_api import fetch_with
    from surefetch._run_sync import run_sync

    return run_sync(fetch_with(args))


def fetch_many(
    requests: Iterable[str | FetchRequest],
    *,
    concurrency: int | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    allow_insecure_redirects: bool | None = None,
) -> list[Path]:
    """The synchronous twin of `afetch_many`.

    A batch of plain files (no extraction) runs on the transport that a
    single `fetch` would use (see the ``transport`` setting): on the
    standard library, in ``concurrency`` threads over kept-alive
    connections; any other batch runs on surefetch's event loop thread.

    Example:
        >>> import surefetch
        >>> surefetch.fetch_many([])
        []
    """
    from surefetch._fetch.many import batch, paths_or_raise

    items, concurrency = batch(requests, concurrency)
    if not items:
        return []
    plain = not any(item.extract or item.extract_to is not None for item in items)
    from surefetch._http.stdlib_pool import transport_is_stdlib

    if plain and transport_is_stdlib(url for item in items for url in (item.url, *item.mirrors)):
        from surefetch._fetch.options import make_options
        from surefetch._fetch.sync_many import fetch_many_sync

        options = make_options(
            cache=cache,
            policy=policy,
            retries=retries,
            offline=offline,
            refresh=False,
            progress=None,
            allow_insecure_redirects=allow_insecure_redirects,
        )
        outcomes = fetch_many_sync(items, concurrency=concurrency, options=options)
        return paths_or_raise(items, outcomes)
    from surefetch._fetch.async_api import afetch_many
    from surefetch._run_sync import run_sync

    return run_sync(
        afetch_many(
            items,
            concurrency=concurrency,
            cache=cache,
            policy=policy,
            retries=retries,
            offline=offline,
            allow_insecure_redirects=allow_insecure_redirects,
        )
    )
