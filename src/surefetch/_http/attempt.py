"""One request for a URL (redirects followed), its reply judged, its body appended."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

from surefetch._cache.freshness import caching_headers
from surefetch._errors import HTTPStatusError, TransientDownloadError
from surefetch._http.aiohttp_support import plain_connect_error
from surefetch._http.body import stream_body
from surefetch._http.headers import parse_retry_after, shown_headers
from surefetch._http.partial import PartialFile
from surefetch._http.redirects import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    redirect_target,
    same_origin,
    too_many_redirects,
)
from surefetch._http.resume import Reply, Validator, judge_reply, range_headers, url_digest
from surefetch._http.stats import DownloadStats, ProgressCallback
from surefetch._http.tls import tls_for
from surefetch._url import ParsedURL, redact_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger("surefetch")

_NO_VALIDATOR = (
    "the server sent no ETag or Last-Modified to show they are still the same file, "
    "and no sha256 or size was given to check them"
)


async def download_attempt(
    session: aiohttp.ClientSession,
    url: ParsedURL,
    partial: PartialFile,
    *,
    authorization: str | None,
    checked: bool,
    allow_insecure_redirects: bool = False,
    stats: DownloadStats,
    progress: ProgressCallback | None = None,
    conditional: Mapping[str, str] | None = None,
) -> bool:
    """Make one request for ``url`` and append its body to ``partial``.

    ``conditional`` (`surefetch._cache.freshness.conditional_headers`) asks
    whether a cached copy is still current; it is sent only when the
    request starts from byte 0 (a resume is guarded by ``If-Range``
    instead). Returns True when the server answered it with ``304 Not
    Modified`` (nothing is appended), False when a body was appended. A
    ``304`` to a request that was not conditional is an error. What the
    response says about caching goes to ``stats.caching``.

    ``checked`` says that the finished file is checked against a sha256 or
    a size, which makes a resume safe without a validator. A redirect from
    https to http is refused (`InsecureRedirectError`) unless
    ``allow_insecure_redirects``.

    Raises `HTTPStatusError` for an error status, `TransientDownloadError`
    for a reply that does not continue the partial file or a body that ends
    short of the file, and whatever the transport raises when the
    connection fails.
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
    # --- revalidation (RFC 9111 4.3): only a fresh start asks "has it changed?"
    asked_if_changed = bool(conditional) and partial.size == 0 and ranged is None
    if asked_if_changed and conditional is not None:
        headers.update(conditional)
    # ---
    asked_from = partial.size
    response = await _get(session, url.url, headers, allow_insecure=allow_insecure_redirects)
    async with response:
        status = response.status
        stats.caching = caching_headers(response.headers.items())
        if status == 304 and asked_if_changed:
            return True
        content_range = response.headers.get("Content-Range")
        verdict = judge_reply(
            status,
            ranged=ranged is not None,
            asked_from=asked_from,
            content_range=content_range,
            content_length=response.content_length,
            total=partial.validator.total if partial.validator else None,
        )
        if verdict.reply is Reply.RANGE_REFUSED:
            partial.restart(f"the server refused the range {headers['Range']} (416)")
            raise TransientDownloadError(
                f"Server refused the range {headers['Range']} of {url.redacted}; restarting"
            )
        if verdict.reply is Reply.ERROR:
            raise HTTPStatusError(
                url=url.redacted,
                status=status,
                reason=response.reason or "",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), now=time.time()),
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
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    total=verdict.total,
                )
            )
        else:
            logger.info("Resuming %s from byte %d", url.redacted, partial.size)
            stats.resumed_bytes += partial.size
            if "If-Range" not in headers:
                partial.unguarded = True
            validator = partial.validator
            if validator is not None and validator.total is None and verdict.total is not None:
                partial.set_validator(dataclasses.replace(validator, total=verdict.total))
        total = verdict.total
        await stream_body(response, partial, total, progress)
        if verdict.end is not None and partial.size > verdict.end:
            partial.restart(f"the body ran past the {verdict.end} bytes the reply announced")
            raise TransientDownloadError(
                f"Body of {url.redacted} ran past the {verdict.end} bytes announced; restarting"
            )
        if total is not None and partial.size != total:
            raise TransientDownloadError(
                f"Body of {url.redacted} ended at byte {partial.size} of {total}"
            )
    return False


def _range_note(headers: dict[str, str]) -> str:
    ranged = headers.get("Range")
    return "" if ranged is None else f" ({ranged})"


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], *, allow_insecure: bool
) -> aiohttp.ClientResponse:
    """GET ``url``, following redirects (each judged before it is followed)."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        logger.info("GET %s%s", redact_url(current), _range_note(headers))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Request headers: %s", shown_headers(headers))
        sent = time.monotonic()
        # Always our own verifying context for https, built once per process.
        context = tls_for(current)
        try:
            if context is None:
                response = await session.get(current, headers=headers, allow_redirects=False)
            else:
                response = await session.get(
                    current, headers=headers, allow_redirects=False, ssl=context
                )
        except OSError as error:  # aiohttp's connection errors are OSErrors
            plain = plain_connect_error(error, current)
            if plain is None:
                raise
            raise plain from error.__cause__ or getattr(error, "os_error", None)
        location = response.headers.get("Location")
        logger.info(
            "%d %s from %s (%.3fs)",
            response.status,
            response.reason or "",
            redact_url(current),
            time.monotonic() - sent,
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Response headers: %s", shown_headers(response.headers.items()))
        if response.status not in REDIRECT_STATUSES or location is None:
            return response
        response.release()  # a redirect's body is not wanted
        target = redirect_target(current, location, allow_insecure=allow_insecure)
        if not same_origin(current, target):
            # Credentials are for the origin they were given for, as browsers do.
            headers = {k: v for k, v in headers.items() if k != "Authorization"}
        logger.info("Following the redirect from %s to %s", redact_url(current), redact_url(target))
        current = target
    raise too_many_redirects(url, current)
