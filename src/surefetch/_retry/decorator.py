"""The `retry` decorator, for sync and async functions."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

from surefetch._retry.budget import (
    PolicySpec,
    current_scope,
    materialize,
    thread_stack,
)
from surefetch._retry.engine import Loop, fixed_policy, open_async_scope, sleep, sync_scope
from surefetch._retry.policy import RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")


def _continue_sync(
    fn: Callable[P, T],
    args: Any,
    kwargs: Any,
    first_error: Exception,
    loop: Loop,
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
    fixed = fixed_policy(policy, retries)

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
            loop = Loop(
                policy=fixed,
                scope=materialize(entries, len(entries) - 1),
                operation=name,
                subject=subject,
                started=monotonic(),
            )
            return _continue_sync(fn, args, kwargs, first_error, loop)
        started = monotonic()
        entries.append((fixed, started))
        try:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                first_error = exc
            # Retries run outside the except block so that later errors do
            # not carry this one as their __context__.
            loop = Loop(
                policy=fixed,
                scope=sync_scope(True, independent),
                operation=name,
                subject=subject,
                started=started,
            )
            return _continue_sync(fn, args, kwargs, first_error, loop)
        finally:
            entries.pop()

    return wrapper


def _decorate_async(
    fn: Callable[P, Awaitable[T]],
    fixed: PolicySpec,
    name: str,
    independent: bool,
    subject: str,
) -> Callable[P, Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        scope, opened = open_async_scope(fixed, independent)
        token = current_scope.set(scope) if opened else None
        loop: Loop | None = None
        try:
            while True:
                try:
                    return await fn(*args, **kwargs)
                except Exception as exc:
                    error = exc
                if loop is None:
                    loop = Loop(
                        policy=fixed,
                        scope=scope,
                        operation=name,
                        subject=subject,
                        started=scope.started if opened else time.monotonic(),
                    )
                await sleep(loop.after_failure(error))
        finally:
            if token is not None:
                current_scope.reset(token)

    return wrapper
