"""surefetch: get files from the network into a local cache, reliably.

Example:
    >>> import surefetch
    >>> policy = surefetch.RetryPolicy(retries=5)
    >>> policy.retries
    5
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from surefetch._classify import Decision, classify, classify_status
from surefetch._errors import (
    ConfigError,
    DownloadError,
    FailedAttempt,
    HTTPStatusError,
    IntegrityError,
    OfflineError,
    RetriesExhausted,
    SurefetchError,
)
from surefetch._events import RetryEvent, add_retry_hook
from surefetch._policy import RetryPolicy
from surefetch._request import FetchRequest, FetchResult
from surefetch._retrying import Attempt, aretrying, retry, retrying
from surefetch._version import __version__

if TYPE_CHECKING:
    from surefetch._fetch import (
        FetchManyError,
        afetch,
        afetch_many,
        afetch_result,
        fetch,
        fetch_many,
    )

# The download functions pull in asyncio and, on a cache miss, aiohttp; they
# are loaded on first use so that `import surefetch` (and a cache hit on the
# command line) stays fast.
_LAZY = frozenset(
    {"FetchManyError", "afetch", "afetch_many", "afetch_result", "fetch", "fetch_many"}
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from surefetch import _fetch

        value = getattr(_fetch, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'surefetch' has no attribute {name!r}")


__all__ = [
    "Attempt",
    "ConfigError",
    "Decision",
    "DownloadError",
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
    "__version__",
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
