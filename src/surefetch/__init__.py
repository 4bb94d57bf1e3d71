"""surefetch: get files from the network into a local cache, reliably.

Every public name is loaded on first use: ``import surefetch`` costs almost
nothing, and a cache hit on the command line never imports asyncio, the HTTP
stack or the progress bar.

Example:
    >>> import surefetch
    >>> policy = surefetch.RetryPolicy(retries=5)
    >>> policy.retries
    5
"""

from __future__ import annotations

from surefetch._version import __version__

# Not `typing.TYPE_CHECKING`: importing typing alone costs more than the
# whole of a cache hit may. Type checkers treat this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from surefetch._errors import (
        ConfigError,
        DownloadError,
        ExtractError,
        FailedAttempt,
        HTTPStatusError,
        IntegrityError,
        OfflineError,
        RetriesExhausted,
        SurefetchError,
        UnsafeArchiveError,
    )
    from surefetch._extract.archive import ExtractLimits
    from surefetch._fetch.async_api import afetch, afetch_many, afetch_result
    from surefetch._fetch.many import FetchManyError
    from surefetch._fetch.request import FetchRequest, FetchResult
    from surefetch._fetch.sync_api import fetch, fetch_many
    from surefetch._retry.classify import Decision, classify, classify_status
    from surefetch._retry.decorator import retry
    from surefetch._retry.events import RetryEvent, add_retry_hook
    from surefetch._retry.loops import Attempt, aretrying, retrying
    from surefetch._retry.policy import RetryPolicy

_HOMES = {
    "Attempt": "_retry.loops",
    "ConfigError": "_errors",
    "Decision": "_retry.classify",
    "DownloadError": "_errors",
    "ExtractError": "_errors",
    "ExtractLimits": "_extract.archive",
    "FailedAttempt": "_errors",
    "FetchManyError": "_fetch.many",
    "FetchRequest": "_fetch.request",
    "FetchResult": "_fetch.request",
    "HTTPStatusError": "_errors",
    "IntegrityError": "_errors",
    "OfflineError": "_errors",
    "RetriesExhausted": "_errors",
    "RetryEvent": "_retry.events",
    "RetryPolicy": "_retry.policy",
    "SurefetchError": "_errors",
    "UnsafeArchiveError": "_errors",
    "add_retry_hook": "_retry.events",
    "afetch": "_fetch.async_api",
    "afetch_many": "_fetch.async_api",
    "afetch_result": "_fetch.async_api",
    "aretrying": "_retry.loops",
    "classify": "_retry.classify",
    "classify_status": "_retry.classify",
    "fetch": "_fetch.sync_api",
    "fetch_many": "_fetch.sync_api",
    "retry": "_retry.decorator",
    "retrying": "_retry.loops",
}

__all__ = [
    "__version__",
    "Attempt",
    "ConfigError",
    "Decision",
    "DownloadError",
    "ExtractError",
    "ExtractLimits",
    "FailedAttempt",
    "FetchManyError",
    "FetchRequest",
    "FetchResult",
    "HTTPStatusError",
    "IntegrityError",
    "OfflineError",
    "RetriesExhausted",
    "RetryEvent",
    "RetryPolicy",
    "SurefetchError",
    "UnsafeArchiveError",
    "add_retry_hook",
    "afetch",
    "afetch_many",
    "afetch_result",
    "aretrying",
    "classify",
    "classify_status",
    "fetch",
    "fetch_many",
    "retry",
    "retrying",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'surefetch' has no attribute {name!r}")
    import importlib

    # The transport teaches the classifier what its library's errors mean, so
    # that `classify` and `retry` know them in code that never downloads
    # through surefetch. Light: the library itself is not imported.
    import surefetch._http.aiohttp_support  # noqa: F401

    value = getattr(importlib.import_module(f"surefetch.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
