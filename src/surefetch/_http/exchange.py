"""One GET's decisions, shared by both transports: what to send, what the reply means.

The aiohttp attempt (`surefetch._http.attempt`) and the standard-library one
(`surefetch._http.sync_attempt`) only move bytes; everything they decide about
a request and its reply is decided here, from plain values, so the two
cannot drift: which Range and If-Range to send (and when to restart
instead), how a reply is judged against the partial file, what a new start
records as its validator, and whether the body ended where the reply said.
The decisions themselves are the pure functions of `surefetch._http.resume`;
this module applies them to the `PartialFile`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping

from surefetch._cache.freshness import caching_headers
from surefetch._errors import HTTPStatusError, TransientDownloadError
from surefetch._http.headers import parse_retry_after
from surefetch._http.partial import PartialFile
from surefetch._http.resume import Reply, Validator, Verdict, judge_reply, range_headers, url_digest
from surefetch._http.stats import DownloadStats
from surefetch._log import logger
from surefetch._url import ParsedURL

_NO_VALIDATOR = (
    "the server sent no ETag or Last-Modified to show they are still the same file, "
    "and no sha256 or size was given to check them"
)


def request_headers(
    partial: PartialFile,
    *,
    authorization: str | None,
    checked: bool,
    conditional: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], bool]:
    """The headers of the next request for ``partial``, and whether they ask "has it changed?".

    A partial that may resume asks for the rest (``Range``, ``If-Range``).
    ``checked`` says that the finished file is checked against a sha256 or
    a size, which makes a resume safe without a validator; a partial that
    cannot be resumed is restarted here, with the reason logged.
    ``conditional`` (`surefetch._cache.freshness.conditional_headers`) asks
    whether a cached copy is still current; it is sent only when the
    request starts from byte 0 (a resume is guarded by ``If-Range`` instead).
    """
    headers: dict[str, str] = {"Accept-Encoding": "identity"}
    if authorization is not None:
        headers["Authorization"] = authorization
    ranged = range_headers(partial.size, partial.validator, checked=checked)
    if ranged is None:
        if partial.size > 0:
            partial.restart(_NO_VALIDATOR)
    else:
        headers.update(ranged)
    # Revalidation (RFC 9111 4.3): only a fresh start asks "has it changed?".
    asked_if_changed = bool(conditional) and partial.size == 0 and ranged is None
    if asked_if_changed and conditional is not None:
        headers.update(conditional)
    return headers, asked_if_changed


def not_modified(
    status: int,
    headers: Iterable[tuple[str, str]],
    *,
    asked_if_changed: bool,
    stats: DownloadStats,
) -> bool:
    """Whether the reply is the ``304`` to a revalidation: the cached copy is current.

    What the reply says about caching goes to ``stats.caching`` either way.
    A ``304`` to a request that was not conditional is judged by
    `take_reply` as the error it is.
    """
    stats.caching = caching_headers(headers)
    return status == 304 and asked_if_changed


def take_reply(
    partial: PartialFile,
    url: ParsedURL,
    *,
    status: int,
    reason: str,
    header: Callable[[str], str | None],
    content_length: int | None,
    sent: dict[str, str],
    asked_from: int,
    stats: DownloadStats,
) -> Verdict:
    """Judge the reply to ``sent`` and make ``partial`` ready for its body.

    ``header(name)`` reads a reply header. Raises `HTTPStatusError` for an
    error status and `TransientDownloadError` for a reply that does not
    continue the partial file (which is then restarted). Otherwise the
    partial file is restarted, or its resume logged and counted, and the
    verdict returned: its ``total`` and ``end`` are what `check_body_end`
    checks once the body is in.
    """
    ranged = "Range" in sent
    verdict = judge_reply(
        status,
        ranged=ranged,
        asked_from=asked_from,
        content_range=header("Content-Range"),
        content_length=content_length,
        total=partial.validator.total if partial.validator else None,
    )
    if verdict.reply is Reply.RANGE_REFUSED:
        partial.restart(f"the server refused the range {sent['Range']} (416)")
        raise TransientDownloadError(
            f"Server refused the range {sent['Range']} of {url.redacted}; restarting"
        )
    if verdict.reply is Reply.ERROR:
        raise HTTPStatusError(
            url=url.redacted,
            status=status,
            reason=reason,
            retry_after=parse_retry_after(header("Retry-After"), now=time.time()),
        )
    if verdict.reply is Reply.DOES_NOT_CONTINUE:
        partial.restart(f"the server's 206 reply does not continue them: {verdict.why}")
        raise TransientDownloadError(
            f"Server answered the request for {url.redacted} with a 206 that does not "
            f"continue the partial file: {verdict.why}; restarting"
        )
    if verdict.reply is Reply.WHOLE and partial.size:
        partial.restart("the server sent the whole file (200) instead of the rest")
    if partial.size == 0:
        # A new start (a 200, or a 206 from byte 0): what the server says now counts.
        partial.set_validator(
            Validator(
                url_digest=url_digest(url.url),
                etag=header("ETag"),
                last_modified=header("Last-Modified"),
                total=verdict.total,
            )
        )
    else:
        logger.info("Resuming %s from byte %d", url.redacted, partial.size)
        stats.resumed_bytes += partial.size
        if "If-Range" not in sent:
            partial.unguarded = True
        validator = partial.validator
        if validator is not None and validator.total is None and verdict.total is not None:
            partial.set_validator(dataclasses.replace(validator, total=verdict.total))
    return verdict


def check_body_end(partial: PartialFile, url: ParsedURL, verdict: Verdict) -> None:
    """Raise `TransientDownloadError` if the body ran past its reply's end or stopped short."""
    if verdict.end is not None and partial.size > verdict.end:
        partial.restart(f"the body ran past the {verdict.end} bytes the reply announced")
        raise TransientDownloadError(
            f"Body of {url.redacted} ran past the {verdict.end} bytes announced; restarting"
        )
    total = verdict.total
    if total is not None and partial.size != total:
        raise TransientDownloadError(
            f"Body of {url.redacted} ended at byte {partial.size} of {total}"
        )


def range_note(headers: dict[str, str]) -> str:
    """`` (bytes=N-)`` for the log line of a ranged request, else nothing."""
    ranged = headers.get("Range")
    return "" if ranged is None else f" ({ranged})"
