"""RetryPolicy: validation and the backoff schedule."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from surefetch import ConfigError, RetryPolicy

fractions = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def test_defaults_match_the_documented_schedule() -> None:
    policy = RetryPolicy()
    assert policy.retries == 3
    assert [policy.backoff_window(n) for n in (1, 2, 3)] == [(1.0, 2.0), (1.0, 4.0), (1.0, 8.0)]
    assert policy.deadline is None


@given(
    wait_min=st.floats(min_value=0.0, max_value=10.0),
    spread=st.floats(min_value=0.0, max_value=100.0),
    base=st.floats(min_value=1.0, max_value=10.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    retry_number=st.integers(min_value=1, max_value=10_000),
    draw=fractions,
)
def test_backoff_stays_inside_its_bounds(
    wait_min: float, spread: float, base: float, jitter: float, retry_number: int, draw: float
) -> None:
    policy = RetryPolicy(
        wait_min=wait_min, wait_max=wait_min + spread, backoff_base=base, jitter=jitter
    )
    wait = policy.wait_before(retry_number, rng=lambda: draw)
    assert policy.wait_min <= wait <= policy.wait_max
    lower, upper = policy.backoff_window(retry_number)
    assert lower <= wait <= upper


@given(retry_number=st.integers(min_value=1, max_value=60), draw=fractions)
def test_backoff_upper_bound_grows_until_the_cap(retry_number: int, draw: float) -> None:
    policy = RetryPolicy(wait_min=1.0, wait_max=30.0, jitter=0.0)
    assert policy.wait_before(retry_number, rng=lambda: draw) == min(30.0, 2.0**retry_number)
    assert policy.backoff_window(retry_number + 1)[1] >= policy.backoff_window(retry_number)[1]


@given(retry_after=st.floats(min_value=0.0, max_value=1e6), cap=st.floats(0.0, 600.0))
def test_retry_after_is_obeyed_up_to_the_cap(retry_after: float, cap: float) -> None:
    policy = RetryPolicy(retry_after_max=cap)
    assert policy.wait_before(1, retry_after=retry_after) == min(retry_after, cap)


def test_policy_is_immutable_and_replace_returns_a_new_value() -> None:
    policy = RetryPolicy()
    changed = policy.replace(retries=7)
    assert (policy.retries, changed.retries) == (3, 7)
    with pytest.raises(AttributeError):
        policy.retries = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"wait_min": 5.0, "wait_max": 1.0},
        {"backoff_base": 0.5},
        {"jitter": 2.0},
        {"deadline": 0.0},
        {"retry_after_max": -1.0},
    ],
)
def test_invalid_fields_are_config_errors(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        RetryPolicy(**changes)  # type: ignore[arg-type]
