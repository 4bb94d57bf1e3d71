"""One request for a URL (redirects followed), its reply judged, its body appended."""

from __future__ import annotations

import time
from collections.abc import Mapping

from surefetch._http.aiohttp_support import environment_proxy, plain_connect_error
from surefetch._http.body import stream_body
from surefetch._http.exchange import (
    check_body_end,
    not_modified,
    range_note,
    request_headers,
    take_reply,
)
from surefetch._http.headers import shown_headers
from surefetch._http.netrc_auth import with_netrc_credentials
from surefetch._http.partial import PartialFile
from surefetch._http.redirects import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    follow_redirect,
    too_many_redirects,
)
from surefetch._http.stats import DownloadStats, ProgressCallback
from surefetch._http.tls import tls_for
from surefetch._log import DEBUG, logger
from surefetch._url import ParsedURL, redact_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp


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
    whether a cached copy is still current (see `request_headers`). Returns
    True when the server answered it with ``304 Not Modified`` (nothing is
    appended), False when a body was appended. What the response says about
    caching goes to ``stats.caching``.

    ``checked`` says that the finished file is checked against a sha256 or
    a size, which makes a resume safe without a validator. A redirect from
    https to http is refused (`InsecureRedirectError`) unless
    ``allow_insecure_redirects``.

    Raises `HTTPStatusError` for an error status, `TransientDownloadError`
    for a reply that does not continue the partial file or a body that ends
    short of the file, and whatever the transport raises when the
    connection fails.
    """
    headers, asked_if_changed = request_headers(
        partial, authorization=authorization, checked=checked, conditional=conditional
    )
    asked_from = partial.size
    response = await _get(session, url.url, headers, allow_insecure=allow_insecure_redirects)
    async with response:
        if not_modified(
            response.status,
            response.headers.items(),
            asked_if_changed=asked_if_changed,
            stats=stats,
        ):
            return True
        verdict = take_reply(
            partial,
            url,
            status=response.status,
            reason=response.reason or "",
            header=response.headers.get,
            content_length=response.content_length,
            sent=headers,
            asked_from=asked_from,
            stats=stats,
        )
        await stream_body(response, partial, verdict.total, progress)
        check_body_end(partial, url, verdict)
    return False


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], *, allow_insecure: bool
) -> aiohttp.ClientResponse:
    """GET ``url``, following redirects (each judged before it is followed)."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        logger.info("GET %s%s", redact_url(current), range_note(headers))
        headers = with_netrc_credentials(current, headers)
        if logger.isEnabledFor(DEBUG):
            logger.debug("Request headers: %s", shown_headers(headers))
        sent = time.monotonic()
        # Always our own verifying context for https, built once per process.
        context = tls_for(current)
        proxy, proxy_headers = await environment_proxy(current)
        sending = headers
        if proxy_headers is not None and context is None:
            # Plain http goes to the proxy as it is, so its credentials go with
            # it; through a tunnel (https) they go with the CONNECT only.
            sending, proxy_headers = {**headers, **proxy_headers}, None
        try:
            response = await session.get(
                current,
                headers=sending,
                allow_redirects=False,
                ssl=True if context is None else context,
                proxy=proxy,
                proxy_headers=proxy_headers,
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
        if logger.isEnabledFor(DEBUG):
            logger.debug("Response headers: %s", shown_headers(response.headers.items()))
        if response.status not in REDIRECT_STATUSES or location is None:
            return response
        response.release()  # a redirect's body is not wanted
        current, headers = follow_redirect(
            current, location, headers, allow_insecure=allow_insecure
        )
    raise too_many_redirects(url, current)
