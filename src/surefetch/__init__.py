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
    from surefetch._classify import Decision, classify, classify_status
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
    from surefetch._events import RetryEvent, add_retry_hook
    from surefetch._extract import ExtractLimits
    from surefetch._fetch import (
        FetchManyError,
        afetch,
        afetch_many,
        afetch_result,
        fetch,
        fetch_many,
    )
    from surefetch._policy import RetryPolicy
    from surefetch._request import FetchRequest, FetchResult
    from surefetch._retrying import Attempt, aretrying, retry, retrying

_HOMES = {
    "Attempt": "_retrying",
    "ConfigError": "_errors",
    "Decision": "_classify",
    "DownloadError": "_errors",
    "ExtractError": "_errors",
    "ExtractLimits": "_extract",
    "FailedAttempt": "_errors",
    "FetchManyError": "_fetch",
    "FetchRequest": "_request",
    "FetchResult": "_request",
    "HTTPStatusError": "_errors",
    "IntegrityError": "_errors",
    "OfflineError": "_errors",
    "RetriesExhausted": "_errors",
    "RetryEvent": "_events",
    "RetryPolicy": "_policy",
    "SurefetchError": "_errors",
    "UnsafeArchiveError": "_errors",
    "add_retry_hook": "_events",
    "afetch": "_fetch",
    "afetch_many": "_fetch",
    "afetch_result": "_fetch",
    "aretrying": "_retrying",
    "classify": "_classify",
    "classify_status": "_classify",
    "fetch": "_fetch",
    "fetch_many": "_fetch",
    "retry": "_retrying",
    "retrying": "_retrying",
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

    value = getattr(importlib.import_module(f"surefetch.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
