"""One check per kind of value: whole numbers (`_config.whole_number`) and sha256
(`_url.check_sha256`). Whatever else looks at such a value (the settings, the
command line's flags, the cache-hit shortcut) agrees with them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, strategies as st

from surefetch import _config
from surefetch._cache.layout import content_key
from surefetch._cli import hit
from surefetch._config import (
    CONCURRENCY,
    HTTP_RETRIES,
    MAX_RETRIES,
    parse_whole_number,
    whole_number,
)
from surefetch._errors import ConfigError
from surefetch._url import check_sha256

numbers = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[ \t]*[+-]?[0-9]{0,40}[ \t]*", fullmatch=True),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["٣", "1_0", "0x10", "1e2", "5.0", "+", "-", "", " "]),
)


def _outcome(call: Callable[[], object]) -> object:
    """What ``call`` returns, or ("error", message) for a `ConfigError`."""
    try:
        return call()
    except ConfigError as error:
        return ("error", str(error))


@given(text=numbers)
def test_a_flag_and_a_setting_check_whole_numbers_alike(text: str) -> None:
    flag = _outcome(lambda: parse_whole_number("--retries", text, minimum=0, maximum=MAX_RETRIES))
    setting = _outcome(lambda: HTTP_RETRIES.parse(text, label="--retries"))
    assert flag == setting


@given(text=numbers)
@example(text=" " * 13 + "\t" * 16 + " " * 42 + "\t" * 16)  # longer than a message shows
def test_every_whole_number_setting_uses_the_one_check(text: str) -> None:
    for setting, low, high in [(HTTP_RETRIES, 0, MAX_RETRIES), (CONCURRENCY, 1, 1024)]:
        expected = whole_number(text, minimum=low, maximum=high)
        got = _outcome(lambda setting=setting: setting.parse(text, label="x"))
        assert got == (
            # A long value is shown cut short, the same way in every message.
            ("error", f"x={_config._shown(text)} is not valid: {setting.allowed}")
            if expected is None
            else expected
        )
        assert setting.allowed == _config.allowed_whole_number(low, high)


def test_toml_integers_count_and_booleans_do_not() -> None:
    assert whole_number(7, minimum=0, maximum=10) == 7
    assert whole_number(True, minimum=0, maximum=10) is None
    assert whole_number(7.0, minimum=0, maximum=10) is None


@given(text=numbers)
def test_the_cache_hit_takes_only_retries_the_full_check_takes(text: str) -> None:
    plain = hit.plain_retries(text)
    if plain is not None:
        assert parse_whole_number("--retries", text, minimum=0, maximum=MAX_RETRIES) == plain


def test_the_cache_hit_knows_the_retry_limit() -> None:
    assert hit._MAX_RETRIES == MAX_RETRIES
    assert hit.plain_retries(str(MAX_RETRIES)) == MAX_RETRIES
    assert hit.plain_retries(str(MAX_RETRIES + 1)) is None


HEX = "0123456789abcdefABCDEF"
hashes = st.one_of(
    st.text(alphabet=HEX, min_size=64, max_size=64),
    st.text(alphabet=HEX + "g: \t", min_size=60, max_size=72),
    st.text(alphabet=HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text(max_size=70),
)


@given(text=hashes)
def test_the_cache_key_of_a_hash_takes_only_what_the_check_takes(text: str) -> None:
    # The cache hit keys `--sha256` with content_key, and goes the full way
    # (check_sha256) when content_key refuses: it must never take more.
    try:
        key = content_key(text)
    except ValueError:
        return
    assert check_sha256(text) == key


@pytest.mark.parametrize("value", ["abc", "g" * 64, "sha1:" + "a" * 64, " "])
def test_a_bad_sha256_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        check_sha256(value)
