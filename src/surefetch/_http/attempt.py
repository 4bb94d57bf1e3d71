"""One request for a URL, its reply judged against the partial file, its body appended."""

from __future__ import annotations

import logging
import time

from surefetch._errors import HTTPStatusError, TransientDownloadError
from surefetch._http.body import stream_body
from surefetch._http.headers import parse_retry_after
from surefetch._http.partial import PartialFile
from surefetch._http.resume import Reply, Validator, judge_reply, range_headers
from surefetch._http.stats import DownloadStats, ProgressCallback
from surefetch._url import ParsedURL

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger("surefetch")


async def download_attempt(
    session: aiohttp.ClientSession,
    url: ParsedURL,
    partial: PartialFile,
    *,
    authorization: str | None,
    stats: DownloadStats,
    progress: ProgressCallback | None = None,
) -> None:
    """Make one request for ``url`` and append its body to ``partial``.

    Raises `HTTPStatusError` for an error status, `TransientDownloadError`
    for a reply that does not continue the partial file, and whatever the
    transport raises when the connection fails.
    """
    headers: dict[str, str] = {"Accept-Encoding": "identity"}
    if authorization is not None:
        headers["Authorization"] = authorization
    ranged = range_headers(partial.size, partial.validator)
    if ranged is None:
        if partial.size > 0:
            partial.restart()
    else:
        headers.update(ranged)
    async with session.get(url.url, headers=headers) as response:
        status = response.status
        content_range = response.headers.get("Content-Range")
        reply = judge_reply(
            status,
            ranged=ranged is not None,
            content_range=content_range,
            size=partial.size,
            total=partial.validator.total if partial.validator else None,
        )
        if reply is Reply.RANGE_REFUSED:
            partial.restart()
            raise TransientDownloadError(
                f"Server refused the range {headers['Range']} of {url.redacted}; restarting"
            )
        if reply is Reply.ERROR:
            raise HTTPStatusError(
                url=url.redacted,
                status=status,
                reason=response.reason or "",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), now=time.time()),
            )
        if reply is Reply.DOES_NOT_CONTINUE:
            partial.restart()
            raise TransientDownloadError(
                f"Server answered the range request for {url.redacted} with "
                f"Content-Range {content_range!r}, which does not continue the "
                "partial file; restarting"
            )
        if reply is Reply.CONTINUES:
            logger.info("Resuming %s from byte %d", url.redacted, partial.size)
            stats.resumed_bytes += partial.size
        else:
            if partial.size:
                logger.info("Restarting %s from zero: the server sent the whole file", url.redacted)
                partial.restart()
            partial.set_validator(
                Validator(
                    url=url.url,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    total=response.content_length,
                )
            )
        total = partial.validator.total if partial.validator else None
        await stream_body(response, partial, total, progress)
        if total is not None and partial.size != total:
            raise TransientDownloadError(
                f"Body of {url.redacted} ended at byte {partial.size} of {total}"
            )
