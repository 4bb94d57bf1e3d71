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
from surefetch._fetch.request import FetchRequest, cached_result, open_cache, resolve

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
    threads at once. A download runs on surefetch's own event loop thread,
    which keeps connections alive from one call to the next (``progress`` is
    called on that thread); it is started on the first cache miss and stopped
    at interpreter exit.

    Example:
        >>> import surefetch
        >>> path = surefetch.fetch("https://example.org/data.csv", retries=5)  # doctest: +SKIP
    """
    args = FetchArgs(**locals())
    if not refresh and not extract and extract_to is None:
        # A cache hit needs no event loop, nor asyncio.
        from surefetch._config import OFFLINE, resolve as resolve_setting

        request = args.request()
        hit = cached_result(
            resolve(request),
            open_cache(cache),
            started=time.monotonic(),
            max_age=resolve_max_age(max_age),
            offline=resolve_setting(OFFLINE) if offline is None else offline,
        )
        if hit is not None:
            return hit.path
    from surefetch._fetch.async_api import fetch_with
    from surefetch._run_sync import run_sync

    return run_sync(fetch_with(args)).path


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

    Example:
        >>> import surefetch
        >>> surefetch.fetch_many([])
        []
    """
    from surefetch._fetch.async_api import afetch_many
    from surefetch._run_sync import run_sync

    return run_sync(
        afetch_many(
            requests,
            concurrency=concurrency,
            cache=cache,
            policy=policy,
            retries=retries,
            offline=offline,
            allow_insecure_redirects=allow_insecure_redirects,
        )
    )
