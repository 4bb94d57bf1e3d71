"""The retry loops: shared budget, exhaustion, events, no-wait mode, settings."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import pytest

import surefetch
from surefetch import ConfigError, RetriesExhausted, RetryEvent, RetryPolicy
from surefetch.testing import no_wait


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def reset(self) -> None:
        self.calls += 1
        raise ConnectionResetError(104, "Connection reset by peer")


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SUREFETCH_HTTP_RETRIES", raising=False)
    monkeypatch.delenv("SUREFETCH_NO_RETRY_DELAY", raising=False)
    with no_wait():
        yield


@pytest.fixture
def events() -> Iterator[list[RetryEvent]]:
    seen: list[RetryEvent] = []
    unsubscribe = surefetch.add_retry_hook(seen.append)
    yield seen
    unsubscribe()


def test_success_is_returned_without_retrying(events: list[RetryEvent]) -> None:
    @surefetch.retry()
    def ok(x: int, *, y: int) -> int:
        return x + y

    assert ok(1, y=2) == 3
    assert events == []


def test_transient_failures_below_the_budget_succeed(events: list[RetryEvent]) -> None:
    outcomes: list[BaseException | str] = [ConnectionResetError(104, "r"), TimeoutError(), "done"]

    @surefetch.retry(retries=3)
    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert flaky() == "done"
    assert [e.retry for e in events] == [1, 2]


def test_nested_sync_loops_share_one_budget() -> None:
    counter = Counter()

    @surefetch.retry(retries=3)
    def inner() -> None:
        counter.reset()

    @surefetch.retry(retries=3)
    def outer() -> None:
        inner()

    with pytest.raises(RetriesExhausted) as info:
        outer()
    assert counter.calls == 4
    assert str(info.value).startswith("Request failed after 3 retries in ")
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert len(info.value.attempts) == 4


def test_three_levels_of_nesting_still_make_four_calls() -> None:
    counter = Counter()

    @surefetch.retry(retries=3)
    def level3() -> None:
        counter.reset()

    @surefetch.retry(retries=3)
    def level2() -> None:
        for attempt in surefetch.retrying(retries=3):
            with attempt:
                level3()

    @surefetch.retry(retries=3)
    def level1() -> None:
        level2()

    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        level1()
    assert counter.calls == 4


def test_nested_async_loops_share_one_budget() -> None:
    counter = Counter()

    @surefetch.retry(retries=3)
    async def inner() -> None:
        await asyncio.sleep(0)
        counter.reset()

    @surefetch.retry(retries=3)
    async def outer() -> None:
        await inner()

    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        asyncio.run(outer())
    assert counter.calls == 4


def test_budget_follows_tasks_created_by_gather() -> None:
    counter = Counter()

    @surefetch.retry(retries=3)
    async def inner() -> None:
        await asyncio.sleep(0)
        counter.reset()

    @surefetch.retry(retries=3)
    async def outer() -> None:
        await asyncio.gather(inner())

    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        asyncio.run(outer())
    assert counter.calls == 4


def test_parallel_tasks_draw_from_the_same_budget() -> None:
    counter = Counter()

    @surefetch.retry(retries=3)
    async def inner() -> None:
        await asyncio.sleep(0)
        counter.reset()

    @surefetch.retry(retries=3)
    async def outer() -> None:
        await asyncio.gather(inner(), inner())

    with pytest.raises(RetriesExhausted):
        asyncio.run(outer())
    # Two first attempts and three retries in all, not 2 x 4.
    assert counter.calls == 5


def test_async_iterator_inside_sync_operation_shares_the_budget() -> None:
    counter = Counter()

    async def body() -> None:
        async for attempt in surefetch.aretrying(retries=3):
            with attempt:
                counter.reset()

    @surefetch.retry(retries=3)
    def outer() -> None:
        asyncio.run(body())

    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        outer()
    assert counter.calls == 4


def test_sync_call_inside_async_operation_shares_the_budget() -> None:
    counter = Counter()

    @surefetch.retry(retries=3)
    def inner() -> None:
        counter.reset()

    @surefetch.retry(retries=3)
    async def outer() -> None:
        await asyncio.to_thread(inner)

    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        asyncio.run(outer())
    assert counter.calls == 4


def test_independent_loop_has_its_own_budget() -> None:
    counter = Counter()

    @surefetch.retry(retries=1, independent=True)
    def inner() -> None:
        counter.reset()

    @surefetch.retry(retries=1)
    def outer() -> None:
        inner()

    with pytest.raises(RetriesExhausted):
        outer()
    # Outer: 2 attempts, each running an independent inner loop of 2 calls.
    assert counter.calls == 4


def test_inner_loop_with_fewer_retries_hands_back_to_outer() -> None:
    counter = Counter()

    @surefetch.retry(retries=1)
    def inner() -> None:
        counter.reset()

    @surefetch.retry(retries=3)
    def outer() -> None:
        inner()

    with pytest.raises(RetriesExhausted, match="after 3 retries"):
        outer()
    assert counter.calls == 4


def test_fatal_error_on_first_attempt_is_raised_unwrapped(events: list[RetryEvent]) -> None:
    calls = 0
    error = ValueError("bad input")

    @surefetch.retry(retries=3)
    def broken() -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(ValueError, match="bad input") as info:
        broken()
    assert info.value is error
    assert calls == 1
    assert events == []


def test_fatal_error_after_retries_is_raised_as_is() -> None:
    outcomes: list[BaseException] = [ConnectionResetError(104, "r"), PermissionError(13, "no")]

    @surefetch.retry(retries=3)
    def flaky() -> None:
        raise outcomes.pop(0)

    with pytest.raises(PermissionError):
        flaky()


def test_exhaustion_message_and_attempts() -> None:
    policy = RetryPolicy(retries=2, jitter=0.0)

    @surefetch.retry(policy=policy)
    def always() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(RetriesExhausted) as info:
        always()
    error = info.value
    assert str(error) == "Request failed after 2 retries in 6.0s"
    assert error.retries == 2
    assert [a.number for a in error.attempts] == [1, 2, 3]
    assert [a.wait for a in error.attempts] == [2.0, 4.0, None]
    assert all(isinstance(a.error, BrokenPipeError) for a in error.attempts)
    assert error.last_error is error.__cause__


def test_singular_retry_in_message() -> None:
    @surefetch.retry(policy=RetryPolicy(retries=1, jitter=0.0, wait_min=0.5, wait_max=0.5))
    def always() -> None:
        raise TimeoutError

    with pytest.raises(RetriesExhausted, match=r"^Request failed after 1 retry in 0\.5s$"):
        always()


def test_zero_retries_wraps_the_single_failure() -> None:
    @surefetch.retry(retries=0)
    def always() -> None:
        raise TimeoutError

    with pytest.raises(RetriesExhausted, match="after 0 retries"):
        always()


def test_deadline_stops_retrying() -> None:
    counter = Counter()
    policy = RetryPolicy(retries=10, jitter=0.0, deadline=10.0)

    @surefetch.retry(policy=policy)
    def always() -> None:
        counter.reset()

    with pytest.raises(RetriesExhausted, match="after 2 retries"):
        always()
    # Waits 2 + 4 = 6 s; the third (8 s) would cross the 10 s deadline.
    assert counter.calls == 3


def test_retry_after_is_used_as_the_wait(events: list[RetryEvent]) -> None:
    outcomes: list[BaseException | None] = [
        surefetch.HTTPStatusError(url="http://h/x", status=429, retry_after=7.0),
        None,
    ]

    @surefetch.retry()
    def limited() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "ok"

    assert limited() == "ok"
    assert events[0].wait == 7.0
    assert events[0].reason == "HTTP 429, Retry-After 7s"


def test_each_retry_logs_one_info_record(caplog: pytest.LogCaptureFixture) -> None:
    counter = Counter()

    @surefetch.retry(retries=2, operation="GET http://example.invalid/x")
    def always() -> None:
        counter.reset()

    with caplog.at_level(logging.INFO, logger="surefetch"), pytest.raises(RetriesExhausted):
        always()
    records = [r for r in caplog.records if r.name == "surefetch"]
    assert len(records) == 2
    assert all(r.levelno == logging.INFO for r in records)
    message = records[0].getMessage()
    assert message.startswith("Retrying GET http://example.invalid/x after ")
    assert "(retry 1 of 2)" in message
    assert "Connection reset by peer" in message


def test_hook_errors_do_not_break_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    def bad_hook(event: RetryEvent) -> None:
        raise RuntimeError("hook bug")

    unsubscribe = surefetch.add_retry_hook(bad_hook)
    outcomes: list[BaseException | None] = [TimeoutError(), None]

    @surefetch.retry()
    def flaky() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "ok"

    try:
        assert flaky() == "ok"
    finally:
        unsubscribe()
    assert any("hook" in r.getMessage() for r in caplog.records)


def test_retrying_iterator_sync() -> None:
    counter = Counter()
    with pytest.raises(RetriesExhausted, match="after 2 retries"):
        for attempt in surefetch.retrying(retries=2):
            with attempt:
                counter.reset()
    assert counter.calls == 3


def test_retrying_iterator_stops_after_success() -> None:
    numbers = []
    for attempt in surefetch.retrying(retries=5):
        with attempt:
            numbers.append(attempt.number)
            if attempt.number < 3:
                raise TimeoutError
    assert numbers == [1, 2, 3]


def test_aretrying_iterator() -> None:
    async def main() -> list[int]:
        numbers = []
        async for attempt in surefetch.aretrying(retries=5):
            with attempt:
                numbers.append(attempt.number)
                if attempt.number < 2:
                    raise ConnectionAbortedError
        return numbers

    assert asyncio.run(main()) == [1, 2]


def test_scope_is_closed_after_each_operation() -> None:
    counter = Counter()

    @surefetch.retry(retries=1)
    def always() -> None:
        counter.reset()

    for _ in range(3):
        with pytest.raises(RetriesExhausted, match="after 1 retry "):
            always()
    assert counter.calls == 6


def test_threads_do_not_share_budgets() -> None:
    counter = Counter()
    lock = threading.Lock()

    @surefetch.retry(retries=2)
    def always() -> None:
        with lock:
            counter.calls += 1
        raise TimeoutError

    errors: list[BaseException] = []

    def run() -> None:
        try:
            always()
        except RetriesExhausted as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.calls == 12
    assert len(errors) == 4


def test_no_wait_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from surefetch._retry.budget import no_wait_active

    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    assert no_wait_active()
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "0")
    with no_wait():
        assert no_wait_active()


def test_waits_are_real_outside_no_wait_mode(events: list[RetryEvent]) -> None:
    from surefetch._retry.budget import enter_no_wait, exit_no_wait

    policy = RetryPolicy(retries=1, wait_min=0.05, wait_max=0.05)
    outcomes: list[BaseException | None] = [TimeoutError(), None]

    @surefetch.retry(policy=policy)
    def flaky() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "ok"

    exit_no_wait()
    try:
        started = time.monotonic()
        assert flaky() == "ok"
        assert time.monotonic() - started >= 0.05
    finally:
        enter_no_wait()
    assert events[0].wait == 0.05


@pytest.mark.parametrize("value", ["0", "5", "100", " 7 "])
def test_env_sets_default_retries(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SUREFETCH_HTTP_RETRIES", value)
    counter = Counter()

    @surefetch.retry()
    def always() -> None:
        counter.reset()

    with pytest.raises(RetriesExhausted):
        always()
    assert counter.calls == int(value) + 1


@pytest.mark.parametrize("value", ["foo", "-1", "1.5", "", "99999999999999999999999", "٣"])
def test_invalid_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SUREFETCH_HTTP_RETRIES", value)

    @surefetch.retry()
    def always() -> None:
        raise TimeoutError

    with pytest.raises(ConfigError, match="SUREFETCH_HTTP_RETRIES") as info:
        always()
    assert repr(value) in str(info.value)
    assert "whole number" in str(info.value)


def test_every_public_name_is_exported_and_lazy() -> None:
    import subprocess
    import sys

    assert sorted(surefetch.__all__) == sorted(["__version__", *surefetch._HOMES])
    for name in surefetch.__all__:
        assert getattr(surefetch, name) is not None
    probe = (
        "import surefetch, sys; print(sorted(m for m in sys.modules if m.startswith('surefetch')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "['surefetch', 'surefetch._version']"


def test_threads_drawing_on_one_budget_get_exactly_its_retries() -> None:
    """fetch_many's worker threads can share an enclosing operation's budget.

    Judging a failure and counting it is one step under the budget's lock,
    and the budget is created once however many threads fail first: 8
    threads failing as fast as they can are granted exactly the policy's
    retries in all, never more. The interpreter switches threads every
    microsecond here, so that an unlocked check-then-count would interleave
    (it did, in most trials, before the lock).
    """
    import sys

    from surefetch._retry.budget import Scope
    from surefetch._retry.engine import Loop

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        policy = RetryPolicy(retries=200)
        for _ in range(20):
            scope = Scope(policy, time.monotonic())
            granted = [0] * 8
            start = threading.Barrier(8)

            def work(
                index: int,
                scope: Scope = scope,
                granted: list[int] = granted,
                start: threading.Barrier = start,
            ) -> None:
                loop = Loop(
                    policy=policy,
                    scope=scope,
                    operation="GET x",
                    subject="Request",
                    started=time.monotonic(),
                )
                start.wait()
                while True:
                    try:
                        loop.after_failure(ConnectionResetError("reset"))
                    except (RetriesExhausted, ConnectionResetError):
                        return
                    granted[index] += 1

            with no_wait():
                threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
            assert sum(granted) == 200, granted
            assert scope.budget is not None and scope.budget.used == 200
    finally:
        sys.setswitchinterval(previous)
