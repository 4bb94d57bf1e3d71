"""Download one request: its URL, else each mirror in turn, with retries, resume and a check.

Each URL is retried from the shared budget (the first) or a budget of its
own (each mirror), and resumed with Range between attempts; the complete
bytes are checked against the expected sha256 and size. The final error
names every URL that was tried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from surefetch._errors import ConfigError, DownloadError, IntegrityError, TransientDownloadError
from surefetch._fetch.disk_full import download_failed, no_space
from surefetch._fetch.options import Options
from surefetch._fetch.request import Resolved
from surefetch._http.attempt import download_attempt
from surefetch._http.headers import basic_authorization
from surefetch._http.partial import Follower, PartialFile
from surefetch._http.resume import range_headers
from surefetch._http.stats import DownloadStats
from surefetch._retry.budget import no_wait_active
from surefetch._retry.classify import Decision
from surefetch._retry.loops import aretrying
from surefetch._retry.policy import RetryPolicy
from surefetch._url import ParsedURL, Redactor

if TYPE_CHECKING:
    from surefetch._http.session import Sessions

logger = logging.getLogger("surefetch")


def scrubbing(policy: RetryPolicy, redactor: Redactor) -> RetryPolicy:
    """``policy`` whose decisions' reasons (which reach the log) carry no secrets."""
    classify = policy.classify

    def scrubbed(error: BaseException) -> Decision:
        decision = classify(error)
        return Decision(decision.retry, redactor.scrub(decision.reason), decision.after)

    return policy.replace(classify=scrubbed)


_UNGUARDED = (
    "they were resumed without a validator, so the file may have changed on the "
    "server between attempts; downloading it again from zero"
)


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
    """Download ``url`` into the partial file with retries and resume.

    With ``conditional`` headers (a revalidation), None when the server
    answered ``304 Not Modified``: the cached copy is current.

    An attempt that failed after moving the download forward is followed at
    once, without a backoff wait: the server was answering, the connection
    broke, and the next request continues where this one stopped. It still
    counts against the retry budget.

    Without a validator, a resume is checked by the sha256 or size alone:
    if the finished file fails that check, its bytes may come from two
    versions of the file, so it is downloaded again from zero, once, as a
    retry; a second failure is the `IntegrityError` it is.
    """
    authorization = basic_authorization(url.username, url.password)
    partial = await asyncio.to_thread(
        PartialFile.open, partial_path, url=url.url, label=url.redacted, reader=reader
    )
    checked = sha256 is not None or size is not None
    restarted = False
    if partial.complete:
        mismatch = _mismatch(partial, sha256=sha256, size=size)
        if mismatch is None or not partial.unguarded:
            logger.info("Using the complete download of %s from an earlier attempt", url.redacted)
            return partial
        restarted = True
        partial.restart(f"{mismatch}; {_UNGUARDED}")
    elif partial.size:
        logger.info("Found %d bytes of %s from an earlier attempt", partial.size, url.redacted)
    size_before_attempt = partial.size
    classify = policy.classify

    def classify_with_progress(error: BaseException) -> Decision:
        decision = classify(error)
        if decision.retry and decision.after is None and partial.size > size_before_attempt:
            if range_headers(partial.size, partial.validator, checked=checked) is None:
                return Decision.retry_after(0.0, f"{decision.reason}; restarting from zero")
            return Decision.retry_after(0.0, f"{decision.reason}; resuming at byte {partial.size}")
        return decision

    attempt_policy = policy.replace(classify=classify_with_progress)
    first = True
    not_modified = False
    try:
        async for attempt in aretrying(
            policy=attempt_policy, operation=f"GET {url.redacted}", independent=independent
        ):
            with attempt:
                if not first:
                    await options.host_budget.acquire(url.host, skip_wait=no_wait_active())
                first = False
                size_before_attempt = partial.size
                if not partial.complete:
                    stats.attempts += 1
                    not_modified = await download_attempt(
                        sessions.get(),
                        url,
                        partial,
                        authorization=authorization,
                        checked=checked,
                        allow_insecure_redirects=options.allow_insecure_redirects,
                        stats=stats,
                        progress=options.progress,
                        conditional=conditional,
                    )
                mismatch = None if not_modified else _mismatch(partial, sha256=sha256, size=size)
                if mismatch is not None and partial.unguarded and not restarted:
                    restarted = True
                    partial.restart(f"{mismatch}; {_UNGUARDED}")
                    raise TransientDownloadError(
                        f"{mismatch} of {url.redacted} after a resume without a validator; "
                        "downloading it again from zero"
                    )
    finally:
        partial.close()
    if not_modified:
        partial.discard()
        return None
    return partial


def _mismatch(partial: PartialFile, *, sha256: str | None, size: int | None) -> str | None:
    """How the complete ``partial`` differs from what was asked for, or None if it does not."""
    if size is not None and partial.size != size:
        return f"size mismatch ({partial.size} bytes, expected {size})"
    if sha256 is not None and partial.hasher.hexdigest() != sha256:
        return "sha256 mismatch"
    return None


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


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered a revalidation with ``304``: the cached copy of ``url`` is current.

    What the ``304`` said about caching is in the `DownloadStats` of the fetch.
    """

    url: ParsedURL


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
    revalidate: tuple[str, Mapping[str, str]] | None = None,
) -> tuple[ParsedURL, PartialFile, str] | NotModified:
    """`download_any`, asking first whether a cached copy is still current.

    ``revalidate`` is the (redacted) URL the cached copy came from and the
    conditional headers for it (`surefetch._cache.freshness.conditional_headers`):
    that URL alone is asked, since another server's validators say nothing
    about this one's file. Returns `NotModified` when it answers ``304``.
    """
    partial_path = options.cache.partial_path(resolved.bucket, resolved.key)
    policy = scrubbing(options.policy, resolved.redactor)
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
                sha256=resolved.sha256,
                size=resolved.size,
                conditional=(
                    revalidate[1]
                    if revalidate is not None and revalidate[0] == url.redacted
                    else None
                ),
            )
            if partial is None:
                logger.info("Not modified: the cached copy of %s is current", url.redacted)
                return NotModified(url)
            digest = _verify(partial, url=url, sha256=resolved.sha256, size=resolved.size)
        except (ConfigError, asyncio.CancelledError):
            raise
        except Exception as error:
            failures.append((url, error))
            full = no_space(error)
            if full is not None:  # no mirror makes the bytes fit: free the disk and stop
                raise download_failed(url.redacted, partial_path, full, failures=failures) from full
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


def _download_failed(
    failures: Sequence[tuple[ParsedURL, BaseException]], redactor: Redactor
) -> DownloadError:
    last = failures[-1][1]
    # `except IntegrityError` must catch a mismatch, whatever wraps it.
    kind = IntegrityError if isinstance(last, IntegrityError) else DownloadError
    if len(failures) == 1:
        error = kind(f"Failed to download {failures[0][0].redacted}")
    else:
        tried = "; ".join(
            f"{url.redacted} ({redactor.scrub(_first_line(e))})" for url, e in failures
        )
        error = kind(f"Failed to download from {len(failures)} URLs: {tried}")
    error.__cause__ = last
    error.failures = tuple(failures)  # type: ignore[attr-defined]
    return error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
