"""Settings read from the environment, each validated with a clear error.

An invalid value is never ignored: the error names the variable, the value
and what is allowed, and the CLI turns it into exit code 2.
"""

from __future__ import annotations

from surefetch._errors import ConfigError

MAX_RETRIES = 100


def parse_whole_number(name: str, raw: str, *, minimum: int, maximum: int) -> int:
    """Parse ``raw`` as a whole number in [minimum, maximum] or raise `ConfigError`.

    Example:
        >>> parse_whole_number("SUREFETCH_HTTP_RETRIES", " 5 ", minimum=0, maximum=100)
        5
    """
    text = raw.strip()
    allowed = f"expected a whole number from {minimum} to {maximum}"
    digits = text[1:] if text[:1] in ("+", "-") else text
    # At most 18 digits: int() of a huge string is slow and can raise ValueError.
    if not digits.isdigit() or not digits.isascii() or len(digits) > 18:
        raise ConfigError(f"{name}={raw!r} is not valid: {allowed}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} is not valid: {allowed}")
    return value


def parse_env_retries(raw: str) -> int:
    """The value of ``SUREFETCH_HTTP_RETRIES``."""
    return parse_whole_number("SUREFETCH_HTTP_RETRIES", raw, minimum=0, maximum=MAX_RETRIES)


DEFAULT_LOCK_TIMEOUT = 600.0
MAX_SECONDS = 7 * 24 * 3600.0


def parse_seconds(name: str, raw: str, *, minimum: float, maximum: float) -> float:
    """Parse ``raw`` as a number of seconds in [minimum, maximum] or raise `ConfigError`.

    Example:
        >>> parse_seconds("SUREFETCH_LOCK_TIMEOUT", " 2.5 ", minimum=0.0, maximum=60.0)
        2.5
    """
    allowed = f"expected a number of seconds from {minimum:g} to {maximum:g}"
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not valid: {allowed}") from None
    # The comparison is false for NaN, so NaN is refused with the rest.
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} is not valid: {allowed}")
    return value


def parse_env_lock_timeout(raw: str | None) -> float:
    """The value of ``SUREFETCH_LOCK_TIMEOUT`` (seconds), or the default when unset or empty.

    Example:
        >>> parse_env_lock_timeout(None)
        600.0
        >>> parse_env_lock_timeout("30")
        30.0
    """
    if raw is None or not raw.strip():
        return DEFAULT_LOCK_TIMEOUT
    return parse_seconds("SUREFETCH_LOCK_TIMEOUT", raw, minimum=0.0, maximum=MAX_SECONDS)
