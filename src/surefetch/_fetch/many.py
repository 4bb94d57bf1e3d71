"""What `fetch_many` and `afetch_many` share, whatever runs the downloads.

The requests are checked and merged (identical ones share one fetch), and
the outcomes are turned into the paths in input order, or into one
`FetchManyError` naming every failure once the others are cached. No
asyncio, no threads: the asynchronous core and the standard-library thread
pool (`surefetch._fetch.sync_many`) each run the unique requests their way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from surefetch._errors import DownloadError
from surefetch._fetch.request import FetchRequest, FetchResult
from surefetch._url import redact_url


class FetchManyError(DownloadError):
    """Some downloads of a `fetch_many` failed; the others are cached.

    ``errors`` maps each failed URL (redacted) to its error; ``__cause__`` is
    the first failure in input order.

    Example:
        >>> error = FetchManyError({"https://h/b": OSError("gone")}, total=3)
        >>> str(error)
        '1 of 3 downloads failed: https://h/b'
    """

    def __init__(self, errors: dict[str, BaseException], total: int) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} of {total} downloads failed: {', '.join(errors)}")


def batch(
    requests: Iterable[str | FetchRequest], concurrency: int | None
) -> tuple[list[FetchRequest], int]:
    """The requests of a batch (a URL becomes a `FetchRequest`) and its checked concurrency.

    ``concurrency`` defaults to the ``concurrency`` setting.

    Example:
        >>> items, concurrency = batch(["https://h/a", "https://h/a"], 4)
        >>> len(items), concurrency
        (2, 4)
    """
    from surefetch._config import CONCURRENCY, resolve as resolve_setting

    items = [r if isinstance(r, FetchRequest) else FetchRequest(r) for r in requests]
    if concurrency is None:
        return items, resolve_setting(CONCURRENCY)
    return items, CONCURRENCY.parse(concurrency, label="concurrency")


def unique(items: list[FetchRequest]) -> list[FetchRequest]:
    """The distinct requests of ``items``, in order: identical ones share one fetch.

    They would only queue on its key's lock.
    """
    return list(dict.fromkeys(items))


def paths_or_raise(
    items: list[FetchRequest], outcomes: Mapping[FetchRequest, FetchResult | BaseException]
) -> list[Path]:
    """The path of each request in input order, or `FetchManyError` if any failed.

    An outcome that is no `Exception` (an interruption) is raised as it is.

    Example:
        >>> item = FetchRequest("https://h/a?token=s3cret")
        >>> paths_or_raise([item], {item: OSError("gone")})
        Traceback (most recent call last):
        ...
        surefetch._fetch.many.FetchManyError: 1 of 1 downloads failed: https://h/a?token=***
    """
    errors: dict[str, BaseException] = {}
    paths: list[Path] = []
    for item in items:
        outcome = outcomes[item]
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            errors[redact_url(item.url)] = outcome
        else:
            paths.append(outcome.path)
    if errors:
        failure = FetchManyError(errors, len(items))
        failure.__cause__ = next(iter(errors.values()))
        raise failure
    return paths
