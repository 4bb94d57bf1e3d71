"""What downloading a URL decides between its attempts, for both transports' loops.

`surefetch._fetch.mirrors` (aiohttp, async) and `surefetch._fetch.sync_file`
(the standard library) each run a retry loop per URL and try the mirrors in
turn; only the waiting and the request differ. Everything they decide is
here, written once: whether a partial left by an earlier attempt is usable,
how an attempt that moved the download forward is retried (at once), when a
resume without a validator must start over, how the finished bytes are
checked, what a failed URL means for the next one, and the final error.
No asyncio, no transport.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from surefetch._errors import DownloadError, IntegrityError, TransientDownloadError
from surefetch._fetch.disk_full import download_failed, no_space
from surefetch._fetch.request import Resolved
from surefetch._http.partial import PartialFile
from surefetch._http.resume import range_headers
from surefetch._log import logger
from surefetch._retry.classify import Decision
from surefetch._retry.policy import RetryPolicy
from surefetch._url import ParsedURL, Redactor

_UNGUARDED = (
    "they were resumed without a validator, so the file may have changed on the "
    "server between attempts; downloading it again from zero"
)


def scrubbing(policy: RetryPolicy, redactor: Redactor) -> RetryPolicy:
    """``policy`` whose decisions' reasons (which reach the log) carry no secrets."""
    classify = policy.classify

    def scrubbed(error: BaseException) -> Decision:
        decision = classify(error)
        return Decision(decision.retry, redactor.scrub(decision.reason), decision.after)

    return policy.replace(classify=scrubbed)


class UrlDownload:
    """One URL being downloaded into its partial file, between and around attempts.

    An attempt that failed after moving the download forward is followed at
    once, without a backoff wait: the server was answering, the connection
    broke, and the next request continues where this one stopped. It still
    counts against the retry budget.

    Without a validator, a resume is checked by the sha256 or size alone:
    if the finished file fails that check, its bytes may come from two
    versions of the file, so it is downloaded again from zero, once, as a
    retry; a second failure is the `IntegrityError` it is.
    """

    def __init__(
        self,
        url: ParsedURL,
        partial: PartialFile,
        *,
        policy: RetryPolicy,
        sha256: str | None,
        size: int | None,
    ) -> None:
        self.url = url
        self.partial = partial
        self.sha256 = sha256
        self.size = size
        self.checked = sha256 is not None or size is not None
        self.restarted = False
        self._size_before_attempt = partial.size
        classify = policy.classify

        def classify_with_progress(error: BaseException) -> Decision:
            decision = classify(error)
            moved = partial.size > self._size_before_attempt
            if decision.retry and decision.after is None and moved:
                if range_headers(partial.size, partial.validator, checked=self.checked) is None:
                    return Decision.retry_after(0.0, f"{decision.reason}; restarting from zero")
                return Decision.retry_after(
                    0.0, f"{decision.reason}; resuming at byte {partial.size}"
                )
            return decision

        self.policy = policy.replace(classify=classify_with_progress)

    def found_complete(self) -> bool:
        """Whether an earlier attempt left the whole file, usable as it is (no request then)."""
        partial = self.partial
        if partial.complete:
            mismatch = _mismatch(partial, sha256=self.sha256, size=self.size)
            if mismatch is None or not partial.unguarded:
                logger.info(
                    "Using the complete download of %s from an earlier attempt", self.url.redacted
                )
                return True
            self.restarted = True
            partial.restart(f"{mismatch}; {_UNGUARDED}")
        elif partial.size:
            logger.info(
                "Found %d bytes of %s from an earlier attempt", partial.size, self.url.redacted
            )
        return False

    def before_attempt(self) -> bool:
        """Mark where this attempt starts; whether it must make a request (the file is short)."""
        self._size_before_attempt = self.partial.size
        return not self.partial.complete

    def after_attempt(self, *, not_modified: bool = False) -> None:
        """Start over, once, when a resume without a validator ended in a mismatch.

        Nothing to check after a ``304`` (``not_modified``): no body came.
        """
        if not_modified:
            return
        partial = self.partial
        mismatch = _mismatch(partial, sha256=self.sha256, size=self.size)
        if mismatch is not None and partial.unguarded and not self.restarted:
            self.restarted = True
            partial.restart(f"{mismatch}; {_UNGUARDED}")
            raise TransientDownloadError(
                f"{mismatch} of {self.url.redacted} after a resume without a validator; "
                "downloading it again from zero"
            )


class NotModified(NamedTuple):
    """The server answered a revalidation with ``304``: the cached copy of ``url`` is current.

    What the ``304`` said about caching is in the `DownloadStats` of the fetch.
    """

    url: ParsedURL


Revalidation = tuple[str, Mapping[str, str]]
"""The (redacted) URL a cached copy came from, and the conditional headers for it."""


def conditional_for(revalidate: Revalidation | None, url: ParsedURL) -> Mapping[str, str] | None:
    """The conditional headers to send to ``url``: only to the URL the cached copy came from.

    Another server's validators say nothing about this one's file.
    """
    if revalidate is not None and revalidate[0] == url.redacted:
        return revalidate[1]
    return None


def not_modified_at(url: ParsedURL) -> NotModified:
    """The `NotModified` of a ``304`` from ``url``, logged."""
    logger.info("Not modified: the cached copy of %s is current", url.redacted)
    return NotModified(url)


def _mismatch(partial: PartialFile, *, sha256: str | None, size: int | None) -> str | None:
    """How the complete ``partial`` differs from what was asked for, or None if it does not."""
    if size is not None and partial.size != size:
        return f"size mismatch ({partial.size} bytes, expected {size})"
    if sha256 is not None and partial.hasher.hexdigest() != sha256:
        return "sha256 mismatch"
    return None


def verify(partial: PartialFile, *, url: ParsedURL, sha256: str | None, size: int | None) -> str:
    """The sha256 of the finished ``partial``; `IntegrityError` (partial removed) on a mismatch."""
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


def url_failed(
    resolved: Resolved,
    index: int,
    error: Exception,
    failures: list[tuple[ParsedURL, BaseException]],
    partial_path: Path,
) -> None:
    """Record that URL ``index`` failed with ``error``; raise if no mirror can help.

    A full disk is raised at once, with the partial download removed: no
    mirror makes the bytes fit. Otherwise the next mirror, if any, is
    announced in the log.
    """
    urls = resolved.urls
    url = urls[index]
    failures.append((url, error))
    full = no_space(error)
    if full is not None:
        raise download_failed(url.redacted, partial_path, full, failures=failures) from full
    if index + 1 < len(urls):
        logger.info(
            "Trying mirror %s after %s failed: %s",
            urls[index + 1].redacted,
            url.redacted,
            resolved.redactor.scrub(_first_line(error)),
        )


def all_failed(
    failures: Sequence[tuple[ParsedURL, BaseException]], redactor: Redactor
) -> DownloadError:
    """The error when every URL failed: it names each, and its cause is the last error."""
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
