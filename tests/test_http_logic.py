"""Pure download logic: URLs and redaction, headers, resume decisions, the per-host budget."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st

from surefetch import ConfigError
from surefetch._http.headers import ContentRange, parse_content_range, parse_retry_after
from surefetch._http.host_budget import HostRetryBudget
from surefetch._http.resume import Reply, Validator, judge_reply, range_headers
from surefetch._url import (
    Redactor,
    check_sha256,
    filename_from_url,
    parse_url,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:pw@h.example/x", "https://***@h.example/x"),
        ("https://token@h.example/x", "https://***@h.example/x"),
        ("https://h.example/x?access_token=abc&v=1", "https://h.example/x?access_token=***&v=1"),
        ("https://h.example/x?X-Amz-Signature=abc", "https://h.example/x?X-Amz-Signature=***"),
        ("https://h.example/x?v=1", "https://h.example/x?v=1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@given(
    password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=20),
    token=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=3, max_size=20),
)
def test_redactor_scrubs_every_secret(password: str, token: str) -> None:
    url = f"https://user:{password}@h.example/f.tgz?token={token}"
    redactor = Redactor([url])
    text = f"GET {url} failed; password {password}, token {token}"
    scrubbed = redactor.scrub(text)
    assert password not in scrubbed and token not in scrubbed
    assert password not in redact_url(url) and token not in redact_url(url)


def test_parse_url_splits_credentials() -> None:
    parsed = parse_url("HTTPS://me:p%40ss@Example.org:8443/a/b.whl?x=1#frag")
    assert parsed.url == "https://example.org:8443/a/b.whl?x=1"
    assert (parsed.username, parsed.password) == ("me", "p@ss")
    assert parsed.host == "example.org"
    assert "p%40ss" not in parsed.redacted


@pytest.mark.parametrize(
    "url",
    ["ftp://h/x", "h/x", "http://", "http://h:notaport/x", "file:///etc/passwd", "http://h /x"],
)
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_url(url)


def test_filename_from_url() -> None:
    assert filename_from_url("https://h/a/b%20c.tar.gz") == "b_c.tar.gz"
    assert filename_from_url("https://h/a/..") == "download"
    assert filename_from_url("https://h/.hidden") == "hidden"


@pytest.mark.parametrize("value", ["abc", "g" * 64, "a" * 63, "a" * 65, ""])
def test_bad_sha256(value: str) -> None:
    with pytest.raises(ConfigError, match="sha256"):
        check_sha256(value)


def test_retry_after_forms() -> None:
    assert parse_retry_after("0", now=0) == 0.0
    assert parse_retry_after(" 42 ", now=0) == 42.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after("-5", now=0) is None
    assert parse_retry_after("tomorrow", now=0) is None
    assert parse_retry_after(None, now=0) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-99/100", ContentRange(0, 99, 100)),
        ("bytes 50-99/*", ContentRange(50, 99, None)),
        ("bytes 99-50/100", None),
        ("bytes 0-100/100", None),
        ("bytes */100", None),
        ("items 0-1/2", None),
        (None, None),
    ],
)
def test_content_range(value: str | None, expected: ContentRange | None) -> None:
    assert parse_content_range(value) == expected


def test_host_budget_allows_a_burst_then_paces() -> None:
    budget = HostRetryBudget(capacity=3, refill_per_second=2.0)
    waits = [budget.reserve("h", now=0.0) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0]
    assert budget.reserve("other", now=0.0) == 0.0


def test_host_budget_refills_over_time() -> None:
    budget = HostRetryBudget(capacity=1, refill_per_second=1.0)
    assert budget.reserve("h", now=0.0) == 0.0
    assert budget.reserve("h", now=10.0) == 0.0
    assert budget.reserve("h", now=10.0) == 1.0


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=50))
def test_many_failing_downloads_retry_at_the_refill_rate(times: list[float]) -> None:
    budget = HostRetryBudget(capacity=5, refill_per_second=2.0)
    now = 0.0
    granted: list[float] = []
    for step in times:
        now += step / 100
        granted.append(now + budget.reserve("h", now=now))
    # However the retries arrive, no window of length T holds more than
    # capacity + rate * T of them.
    granted.sort()
    for i in range(len(granted)):
        for j in range(i, len(granted)):
            span = granted[j] - granted[i]
            assert j - i + 1 <= 5 + 2.0 * span + 1e-6


def test_host_budget_acquire_waits() -> None:
    budget = HostRetryBudget(capacity=0, refill_per_second=1000.0)
    waited = asyncio.run(budget.acquire("h"))
    assert 0 < waited <= 0.0011


# Resume decisions (pure) ------------------------------------------------------------

_V = Validator(url="https://h/a", etag='"v1"', last_modified=None, total=100)


@pytest.mark.parametrize(
    ("size", "validator", "expected"),
    [
        (0, _V, None),
        (40, _V, {"Range": "bytes=40-", "If-Range": '"v1"'}),
        (40, None, None),
        (40, Validator("https://h/a", 'W/"weak"', None, 100), None),
        (
            40,
            Validator("https://h/a", 'W/"weak"', "Tue, 01 Jan 2030 00:00:00 GMT", 100),
            {"Range": "bytes=40-", "If-Range": "Tue, 01 Jan 2030 00:00:00 GMT"},
        ),
    ],
)
def test_a_range_is_asked_only_when_a_validator_can_guard_it(
    size: int, validator: Validator | None, expected: dict[str, str] | None
) -> None:
    assert range_headers(size, validator) == expected


@pytest.mark.parametrize(
    ("status", "ranged", "content_range", "size", "total", "expected"),
    [
        (200, True, None, 40, 100, Reply.WHOLE),
        (200, False, None, 0, None, Reply.WHOLE),
        (206, True, "bytes 40-99/100", 40, 100, Reply.CONTINUES),
        (206, True, "bytes 40-99/*", 40, 100, Reply.CONTINUES),
        (206, True, "bytes 0-99/100", 40, 100, Reply.DOES_NOT_CONTINUE),
        (206, True, "bytes 40-99/200", 40, 100, Reply.DOES_NOT_CONTINUE),
        (206, True, None, 40, 100, Reply.DOES_NOT_CONTINUE),
        (206, True, "garbage", 40, 100, Reply.DOES_NOT_CONTINUE),
        (416, True, None, 40, 100, Reply.RANGE_REFUSED),
        (416, False, None, 0, None, Reply.ERROR),
        (404, True, None, 40, 100, Reply.ERROR),
        (503, False, None, 0, None, Reply.ERROR),
    ],
)
def test_a_reply_is_judged_against_the_partial_file(
    status: int,
    ranged: bool,
    content_range: str | None,
    size: int,
    total: int | None,
    expected: Reply,
) -> None:
    reply = judge_reply(status, ranged=ranged, content_range=content_range, size=size, total=total)
    assert reply is expected
