"""The shared retry budget of one logical operation.

The outermost retry loop opens a *scope* in a context variable; loops nested
inside it (in the same thread, or in tasks created from it, since asyncio
copies the context into a new task) find the scope and draw from one budget.
The budget itself is created only when something fails, so a call that
succeeds pays for one context-variable set and reset and nothing else.
"""

from __future__ import annotations

import os
import threading
import time
from contextvars import ContextVar

from surefetch._errors import FailedAttempt
from surefetch._retry.policy import RetryPolicy

_NO_WAIT_ENV = "SUREFETCH_NO_RETRY_DELAY"
_no_wait_depth = 0


def no_wait_active() -> bool:
    """Whether waits are skipped (``SUREFETCH_NO_RETRY_DELAY=1`` or `testing.no_wait`)."""
    if _no_wait_depth > 0:
        return True
    return os.environ.get(_NO_WAIT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def enter_no_wait() -> None:
    global _no_wait_depth
    _no_wait_depth += 1


def exit_no_wait() -> None:
    global _no_wait_depth
    _no_wait_depth -= 1


class Budget:
    """Retries spent so far by one logical operation, and its failed attempts.

    ``skipped`` adds the waits that no-wait mode did not sleep, so deadlines
    and the reported time behave as if they had been slept: tests of
    deadlines need no real time. (This and `Scope` are plain classes: every
    download imports them, and defining a dataclass costs about a
    millisecond of start-up.)
    """

    __slots__ = ("failures", "lock", "policy", "skipped", "started", "used")

    def __init__(self, policy: RetryPolicy, started: float) -> None:
        self.policy = policy
        self.started = started
        self.used = 0
        self.skipped = 0.0
        self.failures: list[FailedAttempt] = []
        # Held while a failure is judged and counted: the worker threads of
        # a fetch_many (or a download beside its extraction) can draw on one
        # budget at once, and "check, then count" must not interleave.
        self.lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started + self.skipped


# What a retry loop was given: a policy; or a number of retries, meaning the
# configured default policy with that many; or None, the default itself. The
# default is read from the configuration only when a failure needs it, so a
# decorated call that succeeds never pays for it, and a setting changed after
# decoration (a test's environment) still counts.
PolicySpec = RetryPolicy | int | None


def resolve_policy(spec: PolicySpec) -> RetryPolicy:
    """The `RetryPolicy` that ``spec`` stands for."""
    if isinstance(spec, RetryPolicy):
        return spec
    policy = default_policy()
    return policy if spec is None else policy.replace(retries=spec)


class Scope:
    """One logical operation: the root loop's policy, its start, and its budget once needed.

    ``policy`` is a `PolicySpec`, resolved only when a failure needs it.
    """

    __slots__ = ("budget", "policy", "started")

    def __init__(self, policy: PolicySpec, started: float) -> None:
        self.policy = policy
        self.started = started
        self.budget: Budget | None = None

    def get_budget(self) -> Budget:
        budget = self.budget
        if budget is None:
            with _creating:  # two threads failing at once must get one budget
                if self.budget is None:
                    self.budget = Budget(resolve_policy(self.policy), self.started)
                budget = self.budget
        return budget


_creating = threading.Lock()


# Where an operation's scope is found. Synchronous roots push a cheap
# ``(policy, started)`` tuple on a per-thread stack: a synchronous call cannot
# interleave with another in the same thread, and a list append/pop costs far
# less than a context-variable set/reset on the success path. A nested loop
# turns the tuple into a `Scope` in place when it first needs the budget.
# Asynchronous roots use a context variable, which asyncio copies into every
# task a coroutine creates, so loops inside ``asyncio.gather`` find it.
SyncEntry = tuple["PolicySpec", float] | Scope


class _ThreadStack(threading.local):
    def __init__(self) -> None:
        self.entries: list[SyncEntry] = []


thread_stack = _ThreadStack()
current_scope: ContextVar[Scope | None] = ContextVar("surefetch_retry_scope", default=None)


def materialize(entries: list[SyncEntry], index: int) -> Scope:
    """The `Scope` of a synchronous stack entry, created on first need."""
    entry = entries[index]
    if isinstance(entry, Scope):
        return entry
    scope = Scope(entry[0], entry[1])
    entries[index] = scope
    return scope


def enclosing_scope() -> Scope | None:
    """The scope of the innermost operation running here, if any.

    A synchronous root active in this thread encloses whatever runs now
    (including an event loop it started); otherwise the task's context
    variable tells.
    """
    entries = thread_stack.entries
    if entries:
        return materialize(entries, len(entries) - 1)
    return current_scope.get()


_default_cache: tuple[tuple[int, float | None], RetryPolicy] | None = None


def default_policy() -> RetryPolicy:
    """The policy used when none is given: `RetryPolicy` with the configured settings.

    ``http_retries`` and ``deadline`` come from `surefetch._config` (environment
    ``SUREFETCH_HTTP_RETRIES``/``SUREFETCH_DEADLINE``, else a config file, else
    3 retries and no deadline). Raises `ConfigError` naming the setting when a
    value is invalid.
    """
    global _default_cache
    from surefetch._config import DEADLINE, HTTP_RETRIES, resolve

    settings = (resolve(HTTP_RETRIES), resolve(DEADLINE))
    if _default_cache is not None and _default_cache[0] == settings:
        return _default_cache[1]
    policy = RetryPolicy(retries=settings[0], deadline=settings[1])
    _default_cache = (settings, policy)
    return policy
