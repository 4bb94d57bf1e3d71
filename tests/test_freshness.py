"""The freshness rules (RFC 9111) as pure functions, and the entry metadata that carries them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from surefetch._cache import freshness
from surefetch._cache.entry import EntryMeta
from surefetch._cache.freshness import (
    HEURISTIC_MAX,
    HEURISTIC_MIN,
    caching_headers,
    conditional_headers,
    directives,
    forbids_storing,
    fresh_until,
    freshness_lifetime,
    is_fresh,
    is_immutable,
    refreshed,
)
from surefetch._cli import hit
from surefetch._config import MAX_AGE, MAX_AGE_LIMIT
from surefetch._errors import ConfigError

DATE = "Sat, 01 Jan 2000 00:00:00 GMT"  # 946684800
T0 = 946684800.0


@pytest.mark.parametrize(
    ("headers", "lifetime"),
    [
        ({"cache-control": "max-age=60"}, 60.0),
        ({"cache-control": 'public, MAX-AGE="60"'}, 60.0),
        ({"cache-control": "s-maxage=600, max-age=60"}, 60.0),  # s-maxage: shared caches only
        ({"cache-control": "s-maxage=600"}, None),
        ({"cache-control": "max-age=abc"}, 0.0),  # invalid: stale
        ({"cache-control": "max-age=-5"}, 0.0),
        ({"cache-control": "max-age=5, max-age=60"}, 0.0),  # given twice: invalid
        ({"cache-control": "no-cache, max-age=60"}, 0.0),
        ({"cache-control": "max-age=60", "expires": "Sun, 02 Jan 2000 00:00:00 GMT"}, 60.0),
        ({"expires": "Sat, 01 Jan 2000 01:00:00 GMT", "date": DATE}, 3600.0),
        ({"expires": "Fri, 31 Dec 1999 00:00:00 GMT", "date": DATE}, 0.0),  # in the past
        ({"expires": "0", "date": DATE}, 0.0),  # invalid: already expired
        ({"expires": "soon"}, 0.0),
        ({"last-modified": "Mon, 27 Dec 1999 00:00:00 GMT", "date": DATE}, 5 * 86400 * 0.1),
        ({"last-modified": "Sat, 01 Jan 1990 00:00:00 GMT", "date": DATE}, HEURISTIC_MAX),
        ({"last-modified": DATE, "date": DATE}, HEURISTIC_MIN),
        ({"last-modified": "Sun, 02 Jan 2000 00:00:00 GMT", "date": DATE}, HEURISTIC_MIN),
        ({"etag": '"v1"'}, HEURISTIC_MIN),
        ({"date": DATE}, None),
        ({}, None),
    ],
)
def test_lifetime(headers: dict[str, str], lifetime: float | None) -> None:
    assert freshness_lifetime(headers, received=T0) == lifetime


def test_expires_counts_from_the_date_and_without_one_from_receipt() -> None:
    expires = {"expires": "Sat, 01 Jan 2000 01:00:00 GMT"}
    assert freshness_lifetime(expires, received=T0 + 600) == 3000.0
    assert freshness_lifetime({**expires, "date": "nonsense"}, received=T0) == 3600.0


def test_fresh_until_subtracts_the_age_the_response_already_had() -> None:
    assert fresh_until({"cache-control": "max-age=60", "age": "20"}, received=100.0) == 140.0
    assert fresh_until({"cache-control": "max-age=60", "age": "99"}, received=100.0) == 100.0
    assert fresh_until({"cache-control": "max-age=60", "age": "x"}, received=100.0) == 160.0
    assert fresh_until({}, received=100.0) is None


def test_the_apparent_age_is_ignored_so_a_skewed_clock_does_not_make_all_stale() -> None:
    headers = {"cache-control": "max-age=60", "date": "Sat, 01 Jan 2000 00:00:00 GMT"}
    # Our clock a day ahead of the server's.
    assert fresh_until(headers, received=T0 + 86400) == T0 + 86400 + 60


def test_directives_and_flags() -> None:
    assert directives(None) == {}
    assert directives(" , ,max-age=1,,") == {"max-age": "1"}
    assert forbids_storing({"cache-control": "No-Store"})
    assert not forbids_storing({"cache-control": "no-cache"})
    assert is_immutable({"cache-control": "public, max-age=31536000, immutable"})
    assert not is_immutable({})


@pytest.mark.parametrize(
    ("arguments", "fresh"),
    [
        ({"fresh_until": 10.0}, True),
        ({"fresh_until": 5.0}, False),  # now == 5: the lifetime has run out
        ({"fresh_until": None}, True),  # nothing bounds it
        ({"fresh_until": None, "max_age": 5.0}, False),
        ({"fresh_until": None, "max_age": 5.1}, True),
        ({"fresh_until": 1e12, "max_age": 0.0}, False),  # max_age overrides the server
        ({"fresh_until": 0.0, "max_age": 100.0}, True),
        ({"fresh_until": 0.0, "immutable": True}, True),
        ({"fresh_until": 0.0, "immutable": True, "max_age": 0.0}, True),
    ],
)
def test_is_fresh(arguments: dict[str, object], fresh: bool) -> None:
    values: dict[str, object] = {"now": 5.0, "checked": 0.0, "immutable": False, "max_age": None}
    values.update(arguments)
    assert is_fresh(**values) is fresh  # type: ignore[arg-type]


@given(
    checked=st.floats(0, 1e10),
    elapsed=st.floats(0, 1e9),
    smaller=st.floats(0, 1e9),
    extra=st.floats(0, 1e9),
    until=st.one_of(st.none(), st.floats(0, 2e10)),
)
def test_a_longer_max_age_never_makes_an_entry_stale(
    checked: float, elapsed: float, smaller: float, extra: float, until: float | None
) -> None:
    def fresh(max_age: float) -> bool:
        return is_fresh(
            now=checked + elapsed,
            checked=checked,
            fresh_until=until,
            immutable=False,
            max_age=max_age,
        )

    assert fresh(smaller) <= fresh(smaller + extra)


_header_text = st.text(
    alphabet=st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=40
)


@given(
    headers=st.dictionaries(
        st.sampled_from(["cache-control", "expires", "date", "last-modified", "etag", "age"]),
        st.one_of(
            _header_text,
            st.sampled_from(["max-age=60", "no-cache", "0", DATE, "Mon, 99 Foo 99999 GMT"]),
        ),
    ),
    received=st.floats(0, 4e9),
)
def test_any_header_values_give_a_lifetime_or_none_and_never_raise(
    headers: dict[str, str], received: float
) -> None:
    lifetime = freshness_lifetime(headers, received=received)
    assert lifetime is None or lifetime >= 0
    until = fresh_until(headers, received=received)
    assert (until is None) == (lifetime is None)
    assert until is None or until >= received


def test_caching_headers_keep_what_freshness_needs() -> None:
    found = caching_headers(
        [("ETag", ' "a" '), ("ETag", '"b"'), ("Cache-Control", "max-age=5"),
         ("cache-control", "immutable"), ("Content-Type", "x"), ("Age", "3")]
    )  # fmt: skip
    assert found == {"etag": '"a"', "cache-control": "max-age=5, immutable", "age": "3"}


def test_conditional_headers_send_the_validators_as_they_came() -> None:
    assert conditional_headers({"etag": 'W/"weak"'}) == {"If-None-Match": 'W/"weak"'}
    assert conditional_headers({"last-modified": DATE}) == {"If-Modified-Since": DATE}
    assert conditional_headers({"cache-control": "max-age=1"}) == {}


def test_a_304_replaces_what_it_says_and_drops_the_old_date() -> None:
    stored = {"etag": '"a"', "last-modified": DATE, "date": DATE, "expires": "x"}
    answer = {"etag": '"a"', "cache-control": "max-age=9", "date": "D2"}
    assert refreshed(stored, answer) == {
        "etag": '"a"',
        "last-modified": DATE,
        "expires": "x",
        "cache-control": "max-age=9",
        "date": "D2",
    }


# --- the entry metadata --------------------------------------------------------------------

OLD = (
    b'{"format": 1, "kind": "file", "url": "https://h/a.txt", "size": 2, "sha256": "ab",'
    b' "created": 7, "filename": "a.txt", "files": null, "manifest": null}'
)


def test_an_entry_json_from_before_freshness_still_reads_and_is_never_stale() -> None:
    meta = EntryMeta.from_json(OLD)
    assert meta.headers == () and meta.checked is None and meta.fresh_until is None
    assert meta.last_checked == 7.0
    assert is_fresh(
        now=1e12, checked=meta.last_checked, fresh_until=None, immutable=False, max_age=None
    )
    # Written without the new keys: what an older surefetch reads is unchanged.
    assert set(json.loads(meta.to_json())) == set(json.loads(OLD)) | {"format"}


def test_freshness_fields_round_trip() -> None:
    meta = EntryMeta(
        url="https://h/a.txt",
        size=2,
        sha256="ab",
        created=1.0,
        filename="a.txt",
        headers=(("etag", '"x\\"y"'), ("cache-control", "immutable")),
        checked=2.5,
        fresh_until=62.5,
        immutable=True,
    )
    assert EntryMeta.from_json(meta.to_json()) == meta


@pytest.mark.parametrize(
    "extra",
    [
        b', "headers": ["etag"]',
        b', "headers": {"etag": 5}',
        b', "checked": "soon"',
        b', "fresh_until": true',
        b', "fresh_until": NaN',
    ],
)
def test_malformed_freshness_fields_make_the_entry_unreadable(extra: bytes) -> None:
    with pytest.raises(ValueError, match=r"headers|checked|fresh_until"):
        EntryMeta.from_json(OLD[:-1] + extra + b"}")


# --- the command line's hit path reads the same numbers --------------------------------------


def test_the_hit_path_reads_the_stored_numbers_as_the_full_path_does() -> None:
    meta = EntryMeta(
        url='https://h/a.txt?x="fresh_until": 1',
        size=2,
        sha256="ab",
        created=1.0,
        filename="a.txt",
        headers=(("etag", '"fresh_until": 9e99'),),
        checked=100.0,
        fresh_until=200.0,
    )
    record = meta.to_json()
    assert hit._number(record, b'"fresh_until": ') == 200.0
    assert hit._number(record, b'"checked": ') == 100.0
    assert hit._number(record, b'"missing": ') is None
    assert hit._fresh(record, max_age=None) is False  # 200 is long past
    assert hit._fresh(record, max_age=1e12) is True


def test_the_hit_path_max_age_limit_is_the_settings() -> None:
    assert hit._MAX_AGE_LIMIT == MAX_AGE_LIMIT
    assert hit.plain_seconds(str(int(MAX_AGE_LIMIT))) == MAX_AGE_LIMIT
    assert hit.plain_seconds(str(int(MAX_AGE_LIMIT) + 1)) is None


@given(text=st.one_of(st.text(max_size=12), st.integers(-5, 10**10).map(str)))
def test_the_hit_paths_max_age_shortcut_agrees_with_the_setting(text: str) -> None:
    plain = hit.plain_seconds(text)
    if plain is None:
        return  # the full path decides, and says what is wrong if anything
    assert MAX_AGE.parse(text, label="--max-age") == plain


def test_max_age_setting_checks_its_values() -> None:
    assert MAX_AGE.parse("0", label="x") == 0.0
    assert MAX_AGE.parse("none", label="x") is None
    assert MAX_AGE.parse(1.5, label="x") == 1.5
    for bad in ("-1", "soon", True, str(MAX_AGE_LIMIT * 2)):
        with pytest.raises(ConfigError, match=r"^x=.* is not valid"):
            MAX_AGE.parse(bad, label="x")


def test_the_module_imports_nothing_at_its_top() -> None:
    # A cache hit on the command line loads it: see tests/test_light_paths.py.
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(freshness))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(n) for n in top] == ["from __future__ import annotations"]
