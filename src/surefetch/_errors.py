"""The exceptions surefetch raises.

Every error a user can expect (a bad setting, a failed download, an unsafe
archive) derives from `SurefetchError`, so a caller can catch one type and the
CLI can print it with its ``Caused by:`` chain instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SurefetchError(Exception):
    """Base class of every error surefetch raises on purpose."""


class ConfigError(SurefetchError, ValueError):
    """A setting (argument, environment variable, config file) is invalid.

    The message names the setting, the value and what is allowed. The CLI
    exits with code 2 for it.
    """


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed attempt of a retried operation, kept for diagnostics.

    ``number`` counts attempts from 1 across the whole shared budget; ``wait``
    is the pause planned after it (``None`` when no retry followed).
    """

    number: int
    error: BaseException
    wait: float | None
    elapsed: float


class RetriesExhausted(SurefetchError):
    """The retry budget of an operation is spent.

    The message states how many retries ran and how long the operation took
    ("Request failed after 3 retries in 7.2s"); ``__cause__`` is the last
    error and ``attempts`` lists every failed attempt with its planned wait.
    """

    def __init__(
        self,
        *,
        retries: int,
        elapsed: float,
        attempts: Sequence[FailedAttempt],
        subject: str = "Request",
    ) -> None:
        self.retries = retries
        self.elapsed = elapsed
        self.attempts = tuple(attempts)
        self.subject = subject
        noun = "retry" if retries == 1 else "retries"
        super().__init__(f"{subject} failed after {retries} {noun} in {elapsed:.1f}s")

    @property
    def last_error(self) -> BaseException | None:
        """The error of the final attempt."""
        return self.attempts[-1].error if self.attempts else None


class HTTPStatusError(SurefetchError):
    """A server answered with an HTTP status that is not a success.

    ``retry_after`` holds the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self, *, url: str, status: int, reason: str = "", retry_after: float | None = None
    ):
        self.url = url
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        text = f"HTTP {status}" + (f" {reason}" if reason else "") + f" from {url}"
        if retry_after is not None:
            text += f" (Retry-After: {retry_after:g}s)"
        super().__init__(text)


class CacheError(SurefetchError):
    """The cache cannot do what was asked (a bad entry, an unusable directory).

    The message says what failed; ``__cause__`` holds the underlying error.
    """


class LockTimeout(CacheError):
    """Another process held a cache entry's lock for longer than the timeout.

    ``path`` is the lock file and ``timeout`` the seconds waited; the message
    names the entry and says how to wait longer (``SUREFETCH_LOCK_TIMEOUT``).
    """

    def __init__(self, *, what: str, path: str, timeout: float) -> None:
        self.what = what
        self.path = path
        self.timeout = timeout
        super().__init__(
            f"Timed out after {timeout:g}s waiting for another process to finish {what} "
            f"(lock file {path}); set SUREFETCH_LOCK_TIMEOUT to wait longer"
        )


class ExtractError(SurefetchError):
    """An archive could not be extracted: "Failed to extract archive 'x.tar.gz'".

    Raised ``from`` the underlying error (corrupt data, a truncated stream, a
    failed download feeding the extraction), so the cause chain stays
    reachable. It deliberately sets no ``surefetch_transient``: the retry
    classifier looks through it, and a connection reset in its chain still
    counts as the network error it is.
    """


class UnsafeArchiveError(ExtractError):
    """An archive was refused because extracting it would be unsafe.

    The message names the archive, the member and the reason, e.g.
    ``Refusing to extract archive 'x.tar.gz': member '../evil' escapes the
    destination``. Never retried: the same bytes would be refused again.
    """

    surefetch_transient = False

    def __init__(self, *, archive: str, member: str | None, reason: str) -> None:
        self.archive = archive
        self.member = member
        self.reason = reason
        subject = f"member {member!r} {reason}" if member is not None else reason
        super().__init__(f"Refusing to extract archive {archive!r}: {subject}")


class DownloadError(SurefetchError):
    """A download failed for good; ``__cause__`` says why."""


class TransientDownloadError(DownloadError):
    """A download attempt went wrong in a way another attempt can fix.

    For example a body shorter than its Content-Length that the transport did
    not flag, or a Content-Range that does not continue the partial file.
    """

    surefetch_transient = True


class IntegrityError(DownloadError):
    """The downloaded bytes are not the ones asked for (hash or size mismatch).

    Never retried: the server would send the same bytes again.
    """

    surefetch_transient = False


class OfflineError(DownloadError):
    """Offline mode is on and the cache does not hold the requested file."""

    surefetch_transient = False
