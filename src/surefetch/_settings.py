"""Limits and parsers shared by the settings registry (`_config`) and the command line.

An invalid value is never ignored: the error names where it came from, the
value and what is allowed, and the CLI turns it into exit code 2.
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


DEFAULT_LOCK_TIMEOUT = 600.0
MAX_SECONDS = 7 * 24 * 3600.0
