"""Which transport a fetch runs on: the ``transport`` setting, applied to one call.

Both the synchronous API and `afetch` ask it, so that one rule decides.
"""

from __future__ import annotations

from surefetch._fetch.options import FetchArgs


def on_stdlib(args: FetchArgs) -> bool:
    """Whether the fetch of ``args`` runs on the standard-library transport.

    A single file follows `transport_is_stdlib` without an event loop (for
    `afetch`, in a worker thread). An
    extraction runs on the event loop, which streams the archive into the
    extractor (its download still takes the transport that
    `transport_is_stdlib` picks, in a worker thread when that is stdlib).

    Example:
        >>> on_stdlib(FetchArgs("https://example.org/a.tar.gz", extract=True))
        False
    """
    if args.extract or args.extract_to is not None:
        return False
    from surefetch._http.stdlib_pool import transport_is_stdlib

    return transport_is_stdlib((args.url, *args.mirrors))
