"""Download one request: its URL, else each mirror in turn, with retries, resume and a check.

Each URL is retried from the shared budget (the first) or a budget of its
own (each mirror), and resumed with Range between attempts; the complete
bytes are checked against the expected sha256 and size. The final error
names every URL that was tried.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from surefetch._errors import ConfigError
from surefetch._fetch.options import Options
from surefetch._fetch.request import Resolved
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
from surefetch._http.attempt import download_attempt
from surefetch._http.headers import basic_authorization
from surefetch._http.partial import Follower, PartialFile
from surefetch._http.stats import DownloadStats
from surefetch._retry.budget import no_wait_active
from surefetch._retry.loops import aretrying
from surefetch._retry.policy import RetryPolicy
from surefetch._url import ParsedURL

if TYPE_CHECKING:
    from surefetch._http.session import Sessions


async def _download_one_url(
    url: ParsedURL,
    partial_path: Path,
    *,
    sessions: Sessions,
    options: Options,
    policy: RetryPolicy,
    stats: DownloadStats,
    independent: bool,
    reader: Follower | None,
    sha256: str | None,
    size: int | None,
    conditional: Mapping[str, str] | None = None,
) -> PartialFile | None:
    """Download ``url`` into the partial file with retries and resume (see `UrlDownload`).

    With ``conditional`` headers (a revalidation), None when the server
    answered ``304 Not Modified``: the cached copy is current.
    """
    authorization = basic_authorization(url.username, url.password)
    partial = await asyncio.to_thread(
        functools.partial(
            PartialFile.open,
            partial_path,
            url=url.url,
            label=url.redacted,
            reader=reader,
            synced_when_stored=options.cache.syncs_files,
        )
    )
    download = UrlDownload(url, partial, policy=policy, sha256=sha256, size=size)
    if download.found_complete():
        return partial
    first = True
    not_modified = False
    try:
        async for attempt in aretrying(
            policy=download.policy, operation=f"GET {url.redacted}", independent=independent
        ):
            with attempt:
                if not first:
                    await options.host_budget.acquire(url.host, skip_wait=no_wait_active())
                first = False
                if download.before_attempt():
                    stats.attempts += 1
                    not_modified = await download_attempt(
                        sessions.get(),
                        url,
                        partial,
                        authorization=authorization,
                        checked=download.checked,
                        allow_insecure_redirects=options.allow_insecure_redirects,
                        stats=stats,
                        progress=options.progress,
                        conditional=conditional,
                    )
                download.after_attempt(not_modified=not_modified)
    finally:
        partial.close()
    if not_modified:
        partial.discard()
        return None
    return partial


async def download_any(
    resolved: Resolved,
    *,
    sessions: Sessions,
    options: Options,
    stats: DownloadStats,
    reader: Follower | None = None,
) -> tuple[ParsedURL, PartialFile, str]:
    """Download from the URL or, failing that, each mirror in turn; verify the bytes.

    Returns the URL that worked, the complete partial file and its sha256.
    Must run under the key's lock: the partial file is shared by attempts.
    """
    found = await download_unless_current(
        resolved, sessions=sessions, options=options, stats=stats, reader=reader
    )
    assert not isinstance(found, NotModified)  # nothing was asked conditionally
    return found


async def download_unless_current(
    resolved: Resolved,
    *,
    sessions: Sessions,
    options: Options,
    stats: DownloadStats,
    reader: Follower | None = None,
    revalidate: Revalidation | None = None,
) -> tuple[ParsedURL, PartialFile, str] | NotModified:
    """`download_any`, asking first whether a cached copy is still current.

    ``revalidate`` is the (redacted) URL the cached copy came from and the
    conditional headers for it (`surefetch._cache.freshness.conditional_headers`):
    that URL alone is asked (`conditional_for`). Returns `NotModified` when
    it answers ``304``.
    """
    partial_path = options.cache.partial_path(resolved.bucket, resolved.key)
    policy = scrubbing(options.policy, resolved.redactor)
    failures: list[tuple[ParsedURL, BaseException]] = []
    for index, url in enumerate(resolved.urls):
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
                sha256=resolved.sha256,
                size=resolved.size,
                conditional=conditional_for(revalidate, url),
            )
            if partial is None:
                return not_modified_at(url)
            digest = verify(partial, url=url, sha256=resolved.sha256, size=resolved.size)
        except (ConfigError, asyncio.CancelledError):
            raise
        except Exception as error:
            url_failed(resolved, index, error, failures, partial_path)
            continue
        return url, partial, digest
    raise all_failed(failures, resolved.redactor)
