"""A full disk during a fetch: drop the fetch's partial download and say where it happened.

A partial download is kept so that the next attempt resumes it; but when
the disk is full, that partial is what fills it, and keeping it makes the
next fetch fail too, however small and unrelated. So a fetch that fails for
lack of space (ENOSPC, or EDQUOT: over quota) takes its partial download
away, as pip and uv (which never keep one) leave nothing either. Trying a
mirror is pointless then: no other URL makes the bytes smaller.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Sequence
from pathlib import Path

from surefetch._errors import DownloadError
from surefetch._http.partial import PartialFile

NO_SPACE = frozenset(
    number for number in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if number is not None
)


def no_space(error: BaseException) -> OSError | None:
    """The ENOSPC (or EDQUOT) error in ``error``'s chain of causes, if there is one.

    Example:
        >>> try:
        ...     try:
        ...         raise OSError(errno.ENOSPC, "No space left on device")
        ...     except OSError as full:
        ...         raise RuntimeError("Failed to extract") from full
        ... except RuntimeError as error:
        ...     no_space(error).errno == errno.ENOSPC
        True
    """
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE:
            return current
        pending.extend(e for e in (current.__context__, current.__cause__) if e is not None)
        members = getattr(current, "exceptions", None)  # an ExceptionGroup's
        if isinstance(members, tuple):
            pending.extend(e for e in members if isinstance(e, BaseException))
    return None


def drop_partial(partial_path: Path) -> None:
    """Remove a partial download and its sidecar, if they are there."""
    with contextlib.suppress(OSError):
        PartialFile(partial_path).discard()


def download_failed(
    url: str,
    partial_path: Path,
    error: OSError,
    *,
    failures: Sequence[tuple[object, BaseException]] = (),
) -> DownloadError:
    """The error of a download that found the disk full, its partial download removed.

    The operating system's error names no file when a write fails, so it is
    given the partial download's path, which is what was being written.

    Example:
        >>> full = OSError(errno.ENOSPC, "No space left on device")
        >>> error = download_failed("https://h/big.iso", Path("/c/big.part"), full)
        >>> print(error, error.__cause__, sep="\\n")
        Failed to download https://h/big.iso: the disk is full (the partial download was removed)
        [Errno 28] No space left on device: '/c/big.part'
    """
    drop_partial(partial_path)
    if error.filename is None:
        error.filename = str(partial_path)
    failure = DownloadError(
        f"Failed to download {url}: the disk is full (the partial download was removed)"
    )
    failure.__cause__ = error
    failure.failures = tuple(failures)  # type: ignore[attr-defined]  # as every DownloadError
    return failure


@contextlib.contextmanager
def dropping_partial_when_full(partial_path: Path) -> Iterator[None]:
    """Remove the partial download at ``partial_path`` if the block fails for lack of space."""
    try:
        yield
    except BaseException as error:
        if no_space(error) is not None:
            drop_partial(partial_path)
        raise
