"""The last step of a download, for both transports: the verified bytes become an entry."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from surefetch._cache.entry import Entry, EntryMeta
from surefetch._fetch.options import Options
from surefetch._fetch.request import Resolved, must_replace
from surefetch._http.partial import PartialFile

_logger = logging.getLogger("surefetch")


def commit_download(
    resolved: Resolved,
    options: Options,
    partial: PartialFile,
    digest: str,
    *,
    url: str,
    store: Callable[[EntryMeta], Entry],
) -> Entry:
    """Commit the verified download with ``store(meta)`` (blocking: call it in a worker thread
    from async code), under the key's lock.

    An entry already there goes first when it must (a refresh, or one that
    records another sha256): a commit keeps an entry it finds.
    """
    cache = options.cache
    meta = EntryMeta(
        url=url,
        size=partial.size,
        sha256=digest,
        created=time.time(),
        content_key=resolved.key == resolved.sha256,
    )
    if resolved.sha256 is not None:
        _logger.info("Verified sha256 %s (%d bytes) of %s", digest, partial.size, url)
    else:
        _logger.info("Computed sha256 %s (%d bytes) of %s", digest, partial.size, url)
    if must_replace(resolved, cache, refresh=options.refresh):
        cache.remove(resolved.bucket, resolved.key)
    entry = store(meta)
    _logger.info("Stored %s in the cache: %s", url, entry.path)
    return entry
