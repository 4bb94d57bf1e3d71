"""surefetch: get files from the network into a local cache, reliably.

Example:
    >>> import surefetch
    >>> policy = surefetch.RetryPolicy(retries=5)
    >>> policy.retries
    5
"""

from __future__ import annotations

from surefetch._classify import Decision, classify, classify_status
from surefetch._errors import (
    ConfigError,
    FailedAttempt,
    HTTPStatusError,
    RetriesExhausted,
    SurefetchError,
)
from surefetch._events import RetryEvent, add_retry_hook
from surefetch._policy import RetryPolicy
from surefetch._retrying import Attempt, aretrying, retry, retrying
from surefetch._version import __version__

__all__ = [
    "Attempt",
    "ConfigError",
    "Decision",
    "FailedAttempt",
    "HTTPStatusError",
    "RetriesExhausted",
    "RetryEvent",
    "RetryPolicy",
    "SurefetchError",
    "__version__",
    "add_retry_hook",
    "aretrying",
    "classify",
    "classify_status",
    "retry",
    "retrying",
]
