"""The state of one retry loop, shared by the decorator and the iterators.

Every loop shares the budget of the operation it runs in (see
`surefetch._retry.budget`). The decision after a failure is made by
`Loop.after_failure`, the same for sync and async code; only the sleeping
differs.
"""

from __future__ import annotations

import time
from typing import ParamSpec, TypeVar

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


async def sleep(seconds: float) -> None:
    import asyncio  # only async code gets here, and it has asyncio loaded

    await asyncio.sleep(seconds)


def fixed_policy(policy: RetryPolicy | None, retries: int | None) -> PolicySpec:
    """What a loop was given, checked now but resolved at the first failure."""
    if policy is not None:
        return policy if retries is None else policy.replace(retries=retries)
    if retries is not None:
        RetryPolicy(retries=retries)  # an invalid count fails at decoration, not later
    return retries


class Loop:
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
        with budget.lock:
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
            skip = no_wait_active()
            if skip:
                budget.skipped += wait
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
        return 0.0 if skip else wait

    def _spent(self, budget: Budget, wait: float) -> bool:
        if budget.used >= budget.policy.retries or self.local_retries >= self.policy.retries:
            return True
        elapsed_after_wait = budget.elapsed() + wait
        if budget.policy.deadline is not None and elapsed_after_wait > budget.policy.deadline:
            return True
        own_elapsed = time.monotonic() - self.started + budget.skipped + wait
        return self.policy.deadline is not None and own_elapsed > self.policy.deadline


def sync_scope(pushed: bool, independent: bool) -> Scope:
    """The scope a synchronous loop draws from, once it needs one."""
    entries = thread_stack.entries
    if pushed and not independent and len(entries) == 1:
        # A synchronous call made from inside an asynchronous operation.
        outer = current_scope.get()
        if outer is not None:
            return outer
    return materialize(entries, len(entries) - 1)


def open_async_scope(fixed: PolicySpec, independent: bool) -> tuple[Scope, bool]:
    """The scope for an async loop, and whether this loop opened it."""
    if not independent:
        scope = enclosing_scope()
        if scope is not None:
            return scope, False
    return Scope(fixed, time.monotonic()), True
