"""Which filesystem errors are spurious, and how long they are retried (no I/O)."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from surefetch._errors import ConfigError
from surefetch._retry.classify import Decision
from surefetch._retry.policy import RetryPolicy

#: Windows errors a scanner or indexer causes: access denied, sharing and lock violations.
SPURIOUS_WINERRORS: frozenset[int] = frozenset({5, 32, 33})
#: errno values that a busy or briefly stale file gives: EBUSY, ETXTBSY, ESTALE.
SPURIOUS_ERRNOS: frozenset[int] = frozenset(
    number
    for number in (getattr(errno, name, None) for name in ("EBUSY", "ETXTBSY", "ESTALE"))
    if number is not None
)
#: Seconds within which spurious errors are retried. Windows scanners hold files longer.
DEFAULT_WINDOW = 10.0 if sys.platform == "win32" else 3.0


def describe_os_error(error: OSError) -> str:
    """The error without its file names: "[Errno 13] Permission denied".

    The retry log line already names both paths, so repeating them would only
    make it longer.

    Example:
        >>> describe_os_error(PermissionError(1, "Operation not permitted"))
        '[Errno 1] Operation not permitted'
    """
    if error.strerror is None:
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    winerror = getattr(error, "winerror", None)
    if winerror is not None:
        return f"[WinError {winerror}] {error.strerror}"
    return f"[Errno {error.errno}] {error.strerror}"


@dataclass(frozen=True, slots=True)
class FsClassifier:
    """Classify filesystem errors: spurious ones are transient, the rest fatal.

    Spurious: an ``OSError`` whose ``winerror`` is in ``winerrors``, whose
    ``errno`` is in ``errnos``, or, when ``permission_errors`` is true, any
    ``PermissionError`` (the policy's deadline bounds how long that is
    believed). Only the error itself is looked at, not its chain: filesystem
    calls raise the operating system's error directly.

    Example:
        >>> FsClassifier()(PermissionError(13, "Permission denied")).retry
        True
        >>> FsClassifier()(FileNotFoundError(2, "No such file or directory")).retry
        False
    """

    winerrors: frozenset[int] = SPURIOUS_WINERRORS
    errnos: frozenset[int] = SPURIOUS_ERRNOS
    permission_errors: bool = True

    def __call__(self, exc: BaseException) -> Decision:
        if isinstance(exc, OSError) and self.is_spurious(exc):
            return Decision.transient(describe_os_error(exc))
        if isinstance(exc, OSError):
            return Decision.fatal(describe_os_error(exc))
        return Decision.fatal(f"{type(exc).__name__}: {exc}")

    def is_spurious(self, error: OSError) -> bool:
        """Whether ``error`` is one that goes away when retried.

        Example:
            >>> import errno
            >>> FsClassifier().is_spurious(OSError(errno.EBUSY, "Device or resource busy"))
            True
            >>> FsClassifier(permission_errors=False).is_spurious(PermissionError(13, "Denied"))
            False
        """
        winerror = getattr(error, "winerror", None)
        if winerror is not None and winerror in self.winerrors:
            return True
        if error.errno in self.errnos:
            return True
        return self.permission_errors and isinstance(error, PermissionError)


_WAIT_MIN = 0.05
_WAIT_MAX = 1.0


def fs_policy(
    *,
    window: float = DEFAULT_WINDOW,
    winerrors: Iterable[int] = SPURIOUS_WINERRORS,
    errnos: Iterable[int] = SPURIOUS_ERRNOS,
    permission_errors: bool = True,
) -> RetryPolicy:
    """The retry policy of the filesystem functions, with a window and set of your own.

    Retries wait 0.05-0.1 s, 0.1-0.2 s, ... up to 1 s each, for at most
    ``window`` seconds in all (waits included); the retry count is as large as
    fits in the window, so the window decides. ``winerrors``, ``errnos`` and
    ``permission_errors`` say which errors are spurious (see `FsClassifier`).

    Example:
        >>> import errno
        >>> policy = fs_policy(window=1.0, errnos=SPURIOUS_ERRNOS | {errno.EAGAIN})
        >>> policy.deadline
        1.0
    """
    if not window > 0 or window == float("inf"):
        raise ConfigError(f"window={window!r} is not valid: expected seconds > 0")
    policy = RetryPolicy(
        retries=0,
        wait_min=_WAIT_MIN,
        wait_max=_WAIT_MAX,
        backoff_base=2.0,
        jitter=0.5,
        deadline=window,
        classify=FsClassifier(frozenset(winerrors), frozenset(errnos), permission_errors),
    )
    return policy.replace(retries=_retries_within(policy, window))


def _retries_within(policy: RetryPolicy, window: float) -> int:
    """The most retries whose shortest waits fit in ``window``: the deadline stops them first."""
    retries, total = 0, 0.0
    while True:
        shortest = policy.backoff_window(retries + 1)[0]
        if total + shortest > window:
            return max(retries, 1)
        total += shortest
        retries += 1
