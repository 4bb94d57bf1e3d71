"""Retry loops: the `retry` decorator and the `retrying` / `aretrying` iterators.

Every loop shares the budget of the operation it runs in (see `_budget`).
The decision after a failure is made by `_Loop.after_failure`, the same for
sync and async code; only the sleeping differs.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from surefetch._errors import FailedAttempt, RetriesExhausted
from surefetch._retry.budget import (
    Budget,
    PolicySpec,
    Scope,
    current_scope,
    enclosing_scope,
    materialize,
    no_wait_active,
    resolve_policy,
    thread_stack,
)
from surefetch._retry.classify import iter_chain
from surefetch._retry.events import RetryEvent, emit
from surefetch._retry.policy import RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")


async def _sleep(seconds: float) -> None:
    import asyncio  # only async code gets here, and it has asyncio loaded

    await asyncio.sleep(seconds)


def _fixed_policy(policy: RetryPolicy | None, retries: int | None) -> PolicySpec:
    """What a loop was given, checked now but resolved at the first failure."""
    if policy is not None:
        return policy if retries is None else policy.replace(retries=retries)
    if retries is not None:
        RetryPolicy(retries=retries)  # an invalid count fails at decoration, not later
    return retries


class _Loop:
    """One retry loop's own state, drawing on its operation's shared budget."""

    __slots__ = ("_own", "local_retries", "operation", "policy", "scope", "started", "subject")

    def __init__(
        self,
        *,
        policy: PolicySpec,
        scope: Scope,
        operation: str,
        subject: str,
        started: float,
    ) -> None:
        self.policy = resolve_policy(policy)
        self.scope = scope
        self.operation = operation
        self.subject = subject
        self.started = started
        self.local_retries = 0

    def after_failure(self, error: Exception) -> float:
        """Record a failed attempt; return the wait before the next one, or raise.

        Raises ``error`` itself when it is fatal, and `RetriesExhausted` (from
        ``error``) when the budget is spent, unless the chain already holds the
        exhaustion of this same budget (an inner loop ran it out): then
        ``error`` goes up as it is, so the message is not stacked twice.
        """
        budget = self.scope.get_budget()
        decision = self.policy.classify(error)
        number = len(budget.failures) + 1
        if not decision.retry:
            budget.failures.append(FailedAttempt(number, error, None, budget.elapsed()))
            raise error
        retry_number = budget.used + 1
        wait = self.policy.wait_before(retry_number, retry_after=decision.after)
        if self._spent(budget, wait):
            budget.failures.append(FailedAttempt(number, error, None, budget.elapsed()))
            if any(getattr(e, "_surefetch_budget", None) is budget for e in iter_chain(error)):
                raise error
            exhausted = RetriesExhausted(
                retries=budget.used,
                elapsed=budget.elapsed(),
                attempts=budget.failures,
                subject=self.subject,
            )
            exhausted._surefetch_budget = budget  # type: ignore[attr-defined]
            raise exhausted from error
        budget.failures.append(FailedAttempt(number, error, wait, budget.elapsed()))
        budget.used = retry_number
        self.local_retries += 1
        emit(
            RetryEvent(
                operation=self.operation,
                retry=retry_number,
                retries=budget.policy.retries,
                wait=wait,
                reason=decision.reason,
                error=error,
            )
        )
        if no_wait_active():
            budget.skipped += wait
            return 0.0
        return wait

    def _spent(self, budget: Budget, wait: float) -> bool:
        if budget.used >= budget.policy.retries or self.local_retries >= self.policy.retries:
            return True
        elapsed_after_wait = budget.elapsed() + wait
        if budget.policy.deadline is not None and elapsed_after_wait > budget.policy.deadline:
            return True
        own_elapsed = time.monotonic() - self.started + budget.skipped + wait
        return self.policy.deadline is not None and own_elapsed > self.policy.deadline


def _sync_scope(pushed: bool, independent: bool) -> Scope:
    """The scope a synchronous loop draws from, once it needs one."""
    entries = thread_stack.entries
    if pushed and not independent and len(entries) == 1:
        # A synchronous call made from inside an asynchronous operation.
        outer = current_scope.get()
        if outer is not None:
            return outer
    return materialize(entries, len(entries) - 1)


def _run_sync(
    fn: Callable[P, T],
    args: Any,
    kwargs: Any,
    first_error: Exception,
    loop: _Loop,
) -> T:
    """Continue a synchronous call after its first attempt failed."""
    error = first_error
    while True:
        wait = loop.after_failure(error)
        if wait:
            time.sleep(wait)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = exc


@overload
def retry(fn: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def retry(
    *,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    operation: str | None = None,
    independent: bool = False,
    subject: str = "Request",
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


def retry(
    fn: Callable[P, T] | None = None,
    /,
    *,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    operation: str | None = None,
    independent: bool = False,
    subject: str = "Request",
) -> Callable[P, T] | Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry a sync or async function on transient errors.

    ``policy`` defaults to `RetryPolicy()` with ``SUREFETCH_HTTP_RETRIES``
    applied (read at the first failure); ``retries`` overrides its count.
    A call made while another retried operation runs (in the same thread, or
    in a task created from it) draws from that operation's budget, so nesting
    never multiplies attempts; ``independent=True`` opens a budget of its own.
    ``operation`` names the call in log records (default: the function's
    qualified name); ``subject`` starts the exhaustion message
    ("Request failed after 3 retries in 7.2s").

    Example:
        >>> import surefetch
        >>> @surefetch.retry(retries=2)
        ... def flaky() -> str:
        ...     return "ok"
        >>> flaky()
        'ok'
    """
    fixed = _fixed_policy(policy, retries)

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        name: str = operation or getattr(fn, "__qualname__", None) or repr(fn)
        import inspect  # here, not at the top: keeps `import surefetch` light

        if inspect.iscoroutinefunction(fn):
            return _decorate_async(fn, fixed, name, independent, subject)  # type: ignore[return-value]
        return _decorate_sync(fn, fixed, name, independent, subject)

    if fn is not None:
        return decorate(fn)
    return decorate


def _decorate_sync(
    fn: Callable[P, T],
    fixed: PolicySpec,
    name: str,
    independent: bool,
    subject: str,
) -> Callable[P, T]:
    monotonic = time.monotonic
    stack = thread_stack

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        entries = stack.entries
        if entries and not independent:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                first_error = exc
            loop = _Loop(
                policy=fixed,
                scope=materialize(entries, len(entries) - 1),
                operation=name,
                subject=subject,
                started=monotonic(),
            )
            return _run_sync(fn, args, kwargs, first_error, loop)
        started = monotonic()
        entries.append((fixed, started))
        try:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                first_error = exc
            # Retries run outside the except block so that later errors do
            # not carry this one as their __context__.
            loop = _Loop(
                policy=fixed,
                scope=_sync_scope(True, independent),
                operation=name,
                subject=subject,
                started=started,
            )
            return _run_sync(fn, args, kwargs, first_error, loop)
        finally:
            entries.pop()

    return wrapper


def _open_async_scope(fixed: PolicySpec, independent: bool) -> tuple[Scope, bool]:
    """The scope for an async loop, and whether this loop opened it."""
    if not independent:
        scope = enclosing_scope()
        if scope is not None:
            return scope, False
    return Scope(fixed, time.monotonic()), True


def _decorate_async(
    fn: Callable[P, Awaitable[T]],
    fixed: PolicySpec,
    name: str,
    independent: bool,
    subject: str,
) -> Callable[P, Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        scope, opened = _open_async_scope(fixed, independent)
        token = current_scope.set(scope) if opened else None
        loop: _Loop | None = None
        try:
            while True:
                try:
                    return await fn(*args, **kwargs)
                except Exception as exc:
                    error = exc
                if loop is None:
                    loop = _Loop(
                        policy=fixed,
                        scope=scope,
                        operation=name,
                        subject=subject,
                        started=scope.started if opened else time.monotonic(),
                    )
                await _sleep(loop.after_failure(error))
        finally:
            if token is not None:
                current_scope.reset(token)

    return wrapper


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
        self._loop: _Loop | None = None
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
        self._scope, opened = _open_async_scope(self._fixed, self._independent)
        if opened:
            self._token = current_scope.set(self._scope)

    def loop(self) -> _Loop:
        if self._loop is None:
            assert self._scope is not None
            self._loop = _Loop(
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
        self._state = _AttemptLoop(_fixed_policy(policy, retries), operation, independent, subject)
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
        self._state = _AttemptLoop(_fixed_policy(policy, retries), operation, independent, subject)
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
            await _sleep(wait)
        attempt = state.next_attempt()
        if attempt is None:
            raise StopAsyncIteration
        return attempt
