"""`RetryPolicy`: how often and how patiently to retry, as an immutable value."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from surefetch._errors import ConfigError

if TYPE_CHECKING:
    from surefetch._retry.classify import Decision

    Classifier = Callable[[BaseException], Decision]


def _default_classifier() -> Classifier:
    from surefetch._retry.classify import classify

    return classify


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How an operation is retried. Immutable: derive variants with `replace`.

    Fields and why their defaults are what they are:

    ``retries`` (3)
        Retries after the first attempt, so at most ``retries + 1`` attempts for
        one logical operation, however deeply retry loops nest. Three is what a
        well-known Rust package manager ships and what users found enough to
        ride out a mirror's hiccup without hanging on a dead host. The default
        can be changed with ``SUREFETCH_HTTP_RETRIES``.
    ``wait_min`` (1.0 s), ``wait_max`` (30.0 s), ``backoff_base`` (2.0)
        Retry number *n* (from 1) waits a random time between ``wait_min`` and
        ``min(wait_max, wait_min * backoff_base ** n)``: 1-2 s, 1-4 s, 1-8 s
        for the first three, the same schedule as that package manager. The
        one-second floor gives a reset server time to come back; the cap keeps a
        long policy from sleeping for minutes.
    ``jitter`` (1.0)
        The share of the window that is randomised. 1.0 draws from the whole
        window (spreads clients that failed together); 0.0 always waits the
        upper bound (deterministic, for reasoning and tests).
    ``deadline`` (None)
        Seconds for the whole operation, waits included. A retry whose wait
        would cross the deadline is not made. None means no deadline, as in the
        package manager; users asked for one to bound CI jobs.
    ``retry_after_max`` (60.0 s)
        The longest wait a server may ask for with Retry-After. A longer request
        is shortened to this cap rather than obeyed or ignored.
    ``classify`` (`surefetch.classify`)
        Maps an exception to retry, retry-after or fatal. Replace it to teach
        the policy about your own errors.

    Example:
        >>> policy = RetryPolicy(retries=5, deadline=60.0)
        >>> policy.replace(retries=0).retries
        0
    """

    retries: int = 3
    wait_min: float = 1.0
    wait_max: float = 30.0
    backoff_base: float = 2.0
    jitter: float = 1.0
    deadline: float | None = None
    retry_after_max: float = 60.0
    classify: Classifier = field(default_factory=_default_classifier, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or isinstance(self.retries, bool):
            raise ConfigError(f"retries={self.retries!r} is not valid: expected a whole number")
        if self.retries < 0:
            raise ConfigError(f"retries={self.retries} is not valid: expected 0 or more")
        if self.wait_min < 0 or self.wait_max < self.wait_min:
            raise ConfigError(
                f"wait_min={self.wait_min}, wait_max={self.wait_max} are not valid: "
                "expected 0 <= wait_min <= wait_max"
            )
        if self.backoff_base < 1:
            raise ConfigError(f"backoff_base={self.backoff_base} is not valid: expected >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter={self.jitter} is not valid: expected 0.0 to 1.0")
        if self.deadline is not None and self.deadline <= 0:
            raise ConfigError(f"deadline={self.deadline} is not valid: expected seconds > 0")
        if self.retry_after_max < 0:
            raise ConfigError(f"retry_after_max={self.retry_after_max} is not valid: expected >= 0")

    def replace(self, **changes: object) -> RetryPolicy:
        """Return a copy with some fields changed.

        Example:
            >>> RetryPolicy().replace(wait_min=0.1, wait_max=1.0).wait_max
            1.0
        """
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def backoff_window(self, retry_number: int) -> tuple[float, float]:
        """The (shortest, longest) wait before retry number ``retry_number`` (from 1).

        Example:
            >>> RetryPolicy().backoff_window(2)
            (1.0, 4.0)
        """
        try:
            upper = self.wait_min * self.backoff_base ** max(retry_number, 1)
        except OverflowError:
            upper = self.wait_max
        upper = min(self.wait_max, upper)
        lower = max(self.wait_min, upper * (1.0 - self.jitter))
        return lower, upper

    def wait_before(
        self,
        retry_number: int,
        *,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """The wait before retry number ``retry_number``, honouring a server's Retry-After.

        A Retry-After wins over the backoff schedule but is capped at
        ``retry_after_max``. ``rng`` returns a float in [0, 1).

        Example:
            >>> RetryPolicy(jitter=0.0).wait_before(3)
            8.0
            >>> RetryPolicy().wait_before(1, retry_after=120.0)
            60.0
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        lower, upper = self.backoff_window(retry_number)
        return lower + (upper - lower) * rng()
