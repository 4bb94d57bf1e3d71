"""Pure download logic: URLs and redaction, headers, resume decisions, the per-host budget."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import assume, given, strategies as st

import surefetch
from surefetch import ConfigError
from surefetch._http.headers import ContentRange, parse_content_range, parse_retry_after
from surefetch._http.host_budget import HostRetryBudget
from surefetch._http.redirects import (
    InsecureRedirectError,
    RedirectError,
    redirect_target,
    same_origin,
)
from surefetch._http.resume import Reply, Validator, judge_reply, range_headers, url_digest
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
    template = "GET https://user:{p}@h.example/f.tgz?token={t} failed; password {p}, token {t}"
    url = f"https://user:{password}@h.example/f.tgz?token={token}"
    redactor = Redactor([url])
    text = template.format(p=password, t=token)
    # A secret that is also a piece of the text around it ("htt" of "https")
    # cannot be told apart from that text: such examples say nothing. The text
    # around is the template without the secrets (replacing the secrets in the
    # text would also cut the "htt" out of "https").
    plain = template.format(p="", t="")
    assume(password not in plain and token not in plain and password not in token)
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

_V = Validator(url_digest=url_digest("https://h/a"), etag='"v1"', last_modified=None, total=100)
_BARE = Validator(url_digest=_V.url_digest, etag=None, last_modified=None, total=100)
_DATE = "Tue, 01 Jan 2030 00:00:00 GMT"


@pytest.mark.parametrize(
    ("size", "validator", "checked", "expected"),
    [
        (0, _V, True, None),
        (40, _V, False, {"Range": "bytes=40-", "If-Range": '"v1"'}),
        (40, None, True, None),
        (40, Validator(_V.url_digest, 'W/"weak"', None, 100), False, None),
        (
            40,
            Validator(_V.url_digest, 'W/"weak"', _DATE, 100),
            False,
            {"Range": "bytes=40-", "If-Range": _DATE},
        ),
        # No validator: a plain range only when the finished file is checked.
        (40, _BARE, False, None),
        (40, _BARE, True, {"Range": "bytes=40-"}),
        (40, Validator(_V.url_digest, 'W/"weak"', None, 100), True, {"Range": "bytes=40-"}),
    ],
)
def test_a_range_is_asked_only_when_a_validator_or_a_check_guards_it(
    size: int, validator: Validator | None, checked: bool, expected: dict[str, str] | None
) -> None:
    assert range_headers(size, validator, checked=checked) == expected


C, DNC, W = Reply.CONTINUES, Reply.DOES_NOT_CONTINUE, Reply.WHOLE


@pytest.mark.parametrize(
    ("status", "asked_from", "content_range", "length", "total", "expected"),
    [
        # A request with Range (asked_from > 0).
        (200, 40, None, 100, 100, (W, 100, 100)),
        (200, 40, None, None, 100, (W, None, None)),
        (206, 40, "bytes 40-99/100", 60, 100, (C, 100, 100)),
        (206, 40, "bytes 40-99/*", None, 100, (C, 100, 100)),
        (206, 40, "bytes 40-59/100", 20, 100, (C, 100, 60)),  # a part of the rest
        (206, 40, "bytes 40-99/100", None, None, (C, 100, 100)),  # the total learnt now
        (206, 40, "bytes 0-99/100", None, 100, (DNC, None, None)),  # starts elsewhere
        (206, 40, "bytes 41-99/100", None, 100, (DNC, None, None)),
        (206, 40, "bytes 40-99/200", None, 100, (DNC, None, None)),  # another total
        (206, 40, "bytes 40-99/*", None, None, (DNC, None, None)),  # no total at all
        (206, 40, "bytes 40-99/100", 59, 100, (DNC, None, None)),  # length disagrees
        (206, 40, None, None, 100, (DNC, None, None)),
        (206, 40, "garbage", None, 100, (DNC, None, None)),
        (416, 40, "bytes */100", None, 100, (Reply.RANGE_REFUSED, None, None)),
        (404, 40, None, None, 100, (Reply.ERROR, None, None)),
        # A request without Range asked from byte 0: a 206 must start there.
        (200, 0, None, 100, None, (W, 100, 100)),
        (200, 0, None, None, None, (W, None, None)),
        (206, 0, "bytes 0-99/2097152", 100, None, (C, 2097152, 100)),  # only the start
        (206, 0, "bytes 0-2097151/2097152", None, None, (C, 2097152, 2097152)),
        (206, 0, "bytes 100-199/2097152", 100, None, (DNC, None, None)),
        (206, 0, "bytes 0-99/*", 100, None, (DNC, None, None)),
        (206, 0, "bytes 0-99/2097152", 100, 1000, (DNC, None, None)),  # the record disagrees
        (416, 0, None, None, None, (Reply.ERROR, None, None)),
        (503, 0, None, None, None, (Reply.ERROR, None, None)),
    ],
)
def test_a_reply_is_judged_against_what_was_asked(
    status: int,
    asked_from: int,
    content_range: str | None,
    length: int | None,
    total: int | None,
    expected: tuple[Reply, int | None, int | None],
) -> None:
    verdict = judge_reply(
        status,
        ranged=asked_from > 0,
        asked_from=asked_from,
        content_range=content_range,
        content_length=length,
        total=total,
    )
    assert (verdict.reply, verdict.total, verdict.end) == expected
    assert bool(verdict.why) == (verdict.reply is DNC)


@given(
    asked_from=st.integers(0, 1000),
    first=st.integers(0, 1000),
    length=st.integers(1, 1000),
    stated=st.integers(1, 3000),
    known=st.one_of(st.none(), st.integers(1, 3000)),
)
def test_a_206_is_accepted_only_where_asked_and_with_one_total(
    asked_from: int, first: int, length: int, stated: int, known: int | None
) -> None:
    last = first + length - 1
    verdict = judge_reply(
        206,
        ranged=asked_from > 0,
        asked_from=asked_from,
        content_range=f"bytes {first}-{last}/{stated}",
        content_length=length,
        total=known,
    )
    consistent = last < stated and first == asked_from and known in (None, stated)
    assert (verdict.reply is Reply.CONTINUES) == consistent
    if consistent:
        assert (verdict.total, verdict.end) == (stated, last + 1)


# Redirect decisions (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "location", "allow", "expected"),
    [
        ("https://h/a/b", "c", False, "https://h/a/c"),
        ("https://h/a/b", "/c?x=1", False, "https://h/c?x=1"),
        ("https://h/a", "//other:8443/c", False, "https://other:8443/c"),
        ("https://h/a", "https://other/c", False, "https://other/c"),
        ("http://h/a", "https://h/a", False, "https://h/a"),  # an upgrade is fine
        ("http://h/a", "http://other/a", False, "http://other/a"),
        ("https://h/a", "http://h/a", True, "http://h/a"),
        ("https://h/a", " HTTP://h/a ", True, "HTTP://h/a"),
        ("https://h/a", "https://u:pw@other/c", False, "https://other/c"),  # no credentials
        ("https://h/a", "http://h/a", False, InsecureRedirectError),
        ("https://h/a", "HTTP://h/a?token=t0psecret", False, InsecureRedirectError),
        ("https://h/a", "ftp://h/a", True, RedirectError),
        ("https://h/a", "file:///etc/passwd", True, RedirectError),
        ("https://h/a", "http://", True, RedirectError),
    ],
)
def test_a_redirect_is_judged_before_it_is_followed(
    current: str, location: str, allow: bool, expected: str | type[Exception]
) -> None:
    if isinstance(expected, str):
        assert redirect_target(current, location, allow_insecure=allow) == expected
        return
    with pytest.raises(expected) as info:
        redirect_target(current, location, allow_insecure=allow)
    assert not surefetch.classify(info.value).retry
    assert "t0psecret" not in str(info.value)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://h/a", "https://h:443/b?c", True),
        ("http://h/a", "http://H:80/", True),
        ("https://h/a", "http://h/a", False),
        ("https://h/a", "https://h:8443/a", False),
        ("https://h/a", "https://other/a", False),
    ],
)
def test_credentials_stay_with_their_origin(first: str, second: str, same: bool) -> None:
    assert same_origin(first, second) is same
