"""The exceptions surefetch raises.

Every error a user can expect (a bad setting, a failed download, an unsafe
archive) derives from `SurefetchError`, so a caller can catch one type and the
CLI can print it with its ``Caused by:`` chain instead of a traceback.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class SurefetchError(Exception):
    """Base class of every error surefetch raises on purpose.

    Example:
        >>> try:
        ...     raise ConfigError("retries=-1 is not valid: expected 0 or more")
        ... except SurefetchError as error:
        ...     print(f"error: {error}")
        error: retries=-1 is not valid: expected 0 or more
    """


class ConfigError(SurefetchError, ValueError):
    """A setting (argument, environment variable, config file) is invalid.

    The message names the setting, the value and what is allowed. The CLI
    exits with code 2 for it.

    Example:
        >>> error = ConfigError("retries=-1 is not valid: expected 0 or more")
        >>> isinstance(error, ValueError), str(error)
        (True, 'retries=-1 is not valid: expected 0 or more')
    """


class FailedAttempt:
    """One failed attempt of a retried operation, kept for diagnostics.

    ``number`` counts attempts from 1 across the whole shared budget; ``wait``
    is the pause planned after it (``None`` when no retry followed).

    Example:
        >>> attempt = FailedAttempt(1, ConnectionResetError("reset"), wait=1.5, elapsed=0.2)
        >>> attempt.number, attempt.wait
        (1, 1.5)
    """

    # A plain class rather than a dataclass: this module is on the path of a
    # command-line cache hit, where importing dataclasses costs too much.
    __slots__ = ("elapsed", "error", "number", "wait")

    def __init__(
        self, number: int, error: BaseException, wait: float | None, elapsed: float
    ) -> None:
        self.number = number
        self.error = error
        self.wait = wait
        self.elapsed = elapsed

    def __repr__(self) -> str:
        return (
            f"FailedAttempt(number={self.number}, error={self.error!r}, "
            f"wait={self.wait!r}, elapsed={self.elapsed!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FailedAttempt):
            return NotImplemented
        mine = (self.number, self.error, self.wait, self.elapsed)
        return mine == (other.number, other.error, other.wait, other.elapsed)

    def __hash__(self) -> int:
        return hash((self.number, id(self.error), self.wait, self.elapsed))


class RetriesExhausted(SurefetchError):
    """The retry budget of an operation is spent.

    The message states how many retries ran and how long the operation took
    ("Request failed after 3 retries in 7.2s"); ``__cause__`` is the last
    error and ``attempts`` lists every failed attempt with its planned wait.

    Example:
        >>> failed = [FailedAttempt(1, TimeoutError(), 1.0, 0.5)]
        >>> failed.append(FailedAttempt(2, TimeoutError(), None, 2.1))
        >>> error = RetriesExhausted(retries=1, elapsed=2.1, attempts=failed)
        >>> str(error)
        'Request failed after 1 retry in 2.1s'
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
        """The error of the final attempt, or None when no attempt is recorded.

        Example:
            >>> reset = ConnectionResetError("reset")
            >>> failed = [FailedAttempt(1, reset, None, 0.1)]
            >>> RetriesExhausted(retries=0, elapsed=0.1, attempts=failed).last_error is reset
            True
        """
        return self.attempts[-1].error if self.attempts else None


def printable(text: str, *, limit: int | None = None) -> str:
    r"""``text`` made safe to show on a terminal, and at most ``limit`` characters long.

    Every character that is not printable (`str.isprintable`: control
    characters such as ESC and BEL, C1 controls, bidirectional overrides,
    undecodable bytes kept as surrogates, line breaks) becomes its escape, as
    in `repr`, so that text from the network cannot retitle a terminal, clear
    it or hide what follows. Past ``limit``, the end becomes ``...``.

    Example:
        >>> printable("Busy\x1b]0;pwned\x07 now")
        'Busy\\x1b]0;pwned\\x07 now'
        >>> printable("x" * 50, limit=10)
        'xxxxxxx...'
    """
    if limit is not None:
        text = text[: limit * 10]  # no more than can be shown: escapes make it longer
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return text


def _escape(character: str) -> str:
    code = ord(character)
    if code < 0x100:
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(character, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# A reason phrase is a few words ("Service Unavailable"); a longer one is junk.
REASON_LIMIT = 100


class HTTPStatusError(SurefetchError):
    """A server answered with an HTTP status that is not a success.

    ``retry_after`` holds the server's Retry-After in seconds, when it sent one.
    ``reason`` is the server's reason phrase made safe to show (`printable`:
    control characters escaped, at most 100 characters), since a hostile
    server chooses it.

    Example:
        >>> error = HTTPStatusError(url="https://example.org/a", status=503, retry_after=5)
        >>> str(error)
        'HTTP 503 from https://example.org/a (Retry-After: 5s)'
        >>> error.status
        503
    """

    def __init__(
        self, *, url: str, status: int, reason: str = "", retry_after: float | None = None
    ):
        self.url = url
        self.status = status
        self.reason = printable(reason, limit=REASON_LIMIT)
        reason = self.reason
        self.retry_after = retry_after
        text = f"HTTP {status}" + (f" {reason}" if reason else "") + f" from {url}"
        if retry_after is not None:
            text += f" (Retry-After: {retry_after:g}s)"
        super().__init__(text)


class CacheError(SurefetchError):
    """The cache cannot do what was asked (a bad entry, an unusable directory).

    The message says what failed; ``__cause__`` holds the underlying error.

    Example:
        >>> try:
        ...     raise CacheError("Cannot use /nonexistent as the cache directory") from OSError(30)
        ... except CacheError as error:
        ...     print(error, "| caused by", type(error.__cause__).__name__)
        Cannot use /nonexistent as the cache directory | caused by OSError
    """


class LockTimeout(CacheError):
    """Another process held a cache entry's lock for longer than the timeout.

    ``path`` is the lock file and ``timeout`` the seconds waited; the message
    names the entry and says how to wait longer (``SUREFETCH_LOCK_TIMEOUT``).

    Example:
        >>> error = LockTimeout(what="downloads entry ab12", path="/c/ab12.lock", timeout=30)
        >>> print(error)
        Timed out after 30s waiting for another process to finish downloads entry ab12 (...
        >>> str(error).endswith("set SUREFETCH_LOCK_TIMEOUT to wait longer")
        True
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

    Example:
        >>> try:
        ...     raise ExtractError("Failed to extract archive 'x.tar.gz'") from EOFError()
        ... except ExtractError as error:
        ...     print(error, "| caused by", type(error.__cause__).__name__)
        Failed to extract archive 'x.tar.gz' | caused by EOFError
    """


class UnsafeArchiveError(ExtractError):
    """An archive was refused because extracting it would be unsafe.

    The message names the archive, the member and the reason, e.g.
    ``Refusing to extract archive 'x.tar.gz': member '../evil' escapes the
    destination``. Never retried: the same bytes would be refused again.

    Example:
        >>> error = UnsafeArchiveError(
        ...     archive="x.tar.gz", member="../evil", reason="escapes the destination"
        ... )
        >>> print(error)
        Refusing to extract archive 'x.tar.gz': member '../evil' escapes the destination
    """

    surefetch_transient = False

    def __init__(self, *, archive: str, member: str | None, reason: str) -> None:
        self.archive = archive
        self.member = member
        self.reason = reason
        subject = f"member {member!r} {reason}" if member is not None else reason
        super().__init__(f"Refusing to extract archive {archive!r}: {subject}")


class DownloadError(SurefetchError):
    """A download failed for good; ``__cause__`` says why.

    Example:
        >>> try:
        ...     raise DownloadError("Failed to download https://example.org/a") from TimeoutError()
        ... except DownloadError as error:
        ...     print(error, "| caused by", type(error.__cause__).__name__)
        Failed to download https://example.org/a | caused by TimeoutError
    """


class TransientDownloadError(DownloadError):
    """A download attempt went wrong in a way another attempt can fix.

    For example a body shorter than its Content-Length that the transport did
    not flag, or a Content-Range that does not continue the partial file.
    """

    surefetch_transient = True


class IntegrityError(DownloadError):
    """The downloaded bytes are not the ones asked for (hash or size mismatch).

    Never retried: the server would send the same bytes again.

    Example:
        >>> from surefetch import classify
        >>> error = IntegrityError("Size mismatch for https://h/a: expected 3 bytes, got 2")
        >>> isinstance(error, DownloadError), classify(error).retry
        (True, False)
    """

    surefetch_transient = False


class OfflineError(DownloadError):
    """Offline mode is on and the cache does not hold the requested file.

    Example:
        >>> from surefetch import classify
        >>> error = OfflineError("https://h/a is not in the cache and offline mode is on")
        >>> isinstance(error, DownloadError), classify(error).retry
        (True, False)
    """

    surefetch_transient = False


class ArchiveDownloadError(ExtractError, DownloadError):
    """Fetching an archive to extract it failed for good: both an `ExtractError` and a
    `DownloadError`, so either ``except`` catches it.

    Its message names the operation ("Failed to extract archive 'x.tar.gz'")
    and its cause is the download's error, or "Request failed after N
    retries" when the shared budget ran out.

    Example:
        >>> error = ArchiveDownloadError("Failed to extract archive 'x.tar.gz'")
        >>> isinstance(error, ExtractError), isinstance(error, DownloadError)
        (True, True)
    """


class ArchiveIntegrityError(ArchiveDownloadError, IntegrityError):
    """An archive's bytes are not the ones asked for: also an `IntegrityError`, never retried.

    Example:
        >>> from surefetch import classify
        >>> classify(ArchiveIntegrityError("Failed to extract archive 'x.tar.gz'")).retry
        False
    """


def archive_failure(name: str, cause: BaseException) -> ArchiveDownloadError:
    """The error for an archive ``name`` whose download failed with ``cause``.

    Example:
        >>> error = archive_failure("x.tar.gz", IntegrityError("Hash mismatch"))
        >>> print(error, "|", isinstance(error, IntegrityError))
        Failed to extract archive 'x.tar.gz' | True
    """
    kind = ArchiveIntegrityError if isinstance(cause, IntegrityError) else ArchiveDownloadError
    error = kind(f"Failed to extract archive {name!r}")
    error.__cause__ = cause
    return error
