"""Retry loops for a block of code: the `retrying` and `aretrying` iterators and `Attempt`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from surefetch._retry.budget import (
    PolicySpec,
    Scope,
    current_scope,
    materialize,
    thread_stack,
)
from surefetch._retry.engine import Loop, fixed_policy, open_async_scope, sleep
from surefetch._retry.policy import RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")


class Attempt:
    """One attempt of a `retrying` / `aretrying` loop; use it as a context manager.

    An exception leaving the ``with`` block is classified: a transient one is
    swallowed and the loop makes another attempt after its wait; a fatal one,
    or one that spends the budget, propagates (the latter as `RetriesExhausted`).
    ``number`` counts the loop's attempts from 1.

    Example:
        >>> import surefetch
        >>> for attempt in surefetch.retrying(policy=surefetch.RetryPolicy(wait_min=0, wait_max=0)):
        ...     with attempt:
        ...         if attempt.number == 1:
        ...             raise ConnectionResetError("reset")  # transient: tried again
        >>> attempt.number
        2
    """

    __slots__ = ("_owner", "number", "outcome")

    def __init__(self, owner: _AttemptLoop, number: int) -> None:
        self._owner = owner
        self.number = number
        self.outcome: str | None = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        owner = self._owner
        if exc is None:
            self.outcome = "done"
            owner.close()
            return False
        if not isinstance(exc, Exception):
            self.outcome = "done"
            owner.close()
            return False
        try:
            owner.wait = owner.loop().after_failure(exc)
        except BaseException:
            self.outcome = "done"
            owner.close()
            raise
        self.outcome = "retry"
        return True


class _AttemptLoop:
    """State shared by the sync and async attempt iterators."""

    def __init__(self, fixed: PolicySpec, operation: str, independent: bool, subject: str) -> None:
        self._fixed = fixed
        self._operation = operation
        self._independent = independent
        self._subject = subject
        self._scope: Scope | None = None
        self._loop: Loop | None = None
        self._token: Any = None
        self._pushed = False
        self._last: Attempt | None = None
        self._closed = False
        self._opened_at = 0.0
        self.wait = 0.0

    def open_sync(self) -> None:
        self._opened_at = time.monotonic()
        entries = thread_stack.entries
        if entries and not self._independent:
            self._scope = materialize(entries, len(entries) - 1)
        else:
            outer = None if self._independent else current_scope.get()
            if outer is not None:
                self._scope = outer
            else:
                self._scope = Scope(self._fixed, self._opened_at)
                entries.append(self._scope)
                self._pushed = True

    def open_async(self) -> None:
        self._opened_at = time.monotonic()
        self._scope, opened = open_async_scope(self._fixed, self._independent)
        if opened:
            self._token = current_scope.set(self._scope)

    def loop(self) -> Loop:
        if self._loop is None:
            assert self._scope is not None
            self._loop = Loop(
                policy=self._fixed,
                scope=self._scope,
                operation=self._operation,
                subject=self._subject,
                started=self._opened_at,
            )
        return self._loop

    def next_attempt(self) -> Attempt | None:
        """The next attempt, or None when the loop is over."""
        last = self._last
        if last is not None and last.outcome != "retry":
            self.close()
            return None
        if self._closed:
            return None
        self._last = Attempt(self, 1 if last is None else last.number + 1)
        return self._last

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pushed:
            entries = thread_stack.entries
            if entries and entries[-1] is self._scope:
                entries.pop()
        if self._token is not None:
            # Closed from another context (an abandoned async iterator
            # finalised by the event loop): that context is gone anyway.
            with contextlib.suppress(ValueError):
                current_scope.reset(self._token)


class retrying:
    """Retry a block of code that cannot be a function.

    Example:
        >>> import surefetch
        >>> for attempt in surefetch.retrying(retries=2):
        ...     with attempt:
        ...         result = 40 + 2
        >>> result
        42
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        retries: int | None = None,
        operation: str = "operation",
        independent: bool = False,
        subject: str = "Request",
    ) -> None:
        self._state = _AttemptLoop(fixed_policy(policy, retries), operation, independent, subject)
        self._started = False

    def __iter__(self) -> Iterator[Attempt]:
        return self

    def __next__(self) -> Attempt:
        state = self._state
        if not self._started:
            self._started = True
            state.open_sync()
        elif state.wait:
            time.sleep(state.wait)
            state.wait = 0.0
        attempt = state.next_attempt()
        if attempt is None:
            raise StopIteration
        return attempt


class aretrying:
    """The async twin of `retrying`: waits with ``asyncio.sleep``.

    Example:
        >>> import asyncio, surefetch
        >>> async def main() -> int:
        ...     async for attempt in surefetch.aretrying(retries=2):
        ...         with attempt:
        ...             return 42
        ...     raise AssertionError("unreachable")
        >>> asyncio.run(main())
        42
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        retries: int | None = None,
        operation: str = "operation",
        independent: bool = False,
        subject: str = "Request",
    ) -> None:
        self._state = _AttemptLoop(fixed_policy(policy, retries), operation, independent, subject)
        self._started = False

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return self

    async def __anext__(self) -> Attempt:
        state = self._state
        if not self._started:
            self._started = True
            state.open_async()
        else:
            wait, state.wait = state.wait, 0.0
            await sleep(wait)
        attempt = state.next_attempt()
        if attempt is None:
            raise StopAsyncIteration
        return attempt
