"""How long a URL-keyed entry stays fresh (RFC 9111), as pure functions of headers and a clock.

surefetch is a private cache (RFC 9111 section 3.5): what the server said
about a response (``Cache-Control``, ``Expires``, ``Date``, ``Age``,
``Last-Modified``, ``ETag``) decides, once, when it was received, until
when its entry is fresh. That moment is stored in the entry (``fresh_until``),
so a cache hit compares two numbers and parses no dates: ``email.utils``
alone would cost a hit more than the rest of it. Only `is_fresh` runs on a
hit, and this module imports nothing at its top.

The rules, in order:

* ``no-store``: the response is not cached at all (`forbids_storing`).
* ``immutable``: never revalidated (nor is an entry keyed by its sha256,
  which the caller knows).
* ``no-cache``: lifetime 0, revalidated on every use.
* ``max-age=N`` (``s-maxage`` is for shared caches and is ignored), else
  ``Expires`` minus ``Date``. An invalid ``max-age`` or ``Expires`` (say
  ``Expires: 0``) means already expired, as RFC 9111 asks.
* Otherwise a heuristic (section 4.2.2): 10% of the time since
  ``Last-Modified`` (as of ``Date``), kept between `HEURISTIC_MIN` and
  `HEURISTIC_MAX`; with an ``ETag`` and no ``Last-Modified``, `HEURISTIC_MIN`.
  The floor keeps a script that fetches the same URL several times in a
  row from asking each time; the cap makes a file that has not changed for
  years be checked once a day.
* No lifetime and no validator at all: no bound (``fresh_until`` None).
  Such an entry is served as before this rule existed, until the
  ``max_age`` setting says otherwise: checking it would mean downloading it
  again in full, every time, from a server that gave no way to tell.

The age a response already had is its ``Age`` header; the apparent age
(our clock minus its ``Date``) is left out on purpose, so that a machine
whose clock is off does not find every entry stale on arrival.

The ``max_age`` setting replaces the server's lifetime (not ``immutable``,
not ``no-store``): an entry is fresh while it was last checked with the
server less than ``max_age`` seconds ago.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

HEURISTIC_FRACTION = 0.1
HEURISTIC_MIN = 300.0
HEURISTIC_MAX = 86400.0

# The response headers an entry keeps (lower-case), and Age, which counts at receipt only.
KEPT = ("etag", "last-modified", "cache-control", "expires", "date")
_READ = (*KEPT, "age")


def caching_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers among ``items`` that freshness needs, by lower-case name.

    Several ``Cache-Control`` lines are joined with commas (they are one
    list); of the others the first counts.

    Example:
        >>> caching_headers([("ETag", '"a"'), ("Cache-Control", "max-age=5"),
        ...                  ("cache-control", "immutable"), ("Server", "x")])
        {'etag': '"a"', 'cache-control': 'max-age=5, immutable'}
    """
    found: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key not in _READ:
            continue
        if key == "cache-control" and key in found:
            found[key] = f"{found[key]}, {value.strip()}"
        else:
            found.setdefault(key, value.strip())
    return found


def directives(cache_control: str | None) -> dict[str, str | None]:
    """The directives of a ``Cache-Control`` value: lower-case name -> value or None.

    A directive given twice keeps its first value but is marked invalid
    (the value ``""``), which `freshness_lifetime` reads as expired.

    Example:
        >>> directives('max-age="60", No-Cache, private')
        {'max-age': '60', 'no-cache': None, 'private': None}
    """
    found: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in found:
            found[name] = ""
            continue
        found[name] = value.strip().strip('"') if equals else None
    return found


def parse_http_date(value: str | None) -> float | None:
    """An HTTP date as Unix time, or None when absent or invalid.

    The dates of a batch of downloads repeat (``Date`` changes once a
    second): parsed ones are remembered, since the parser is slow.

    Example:
        >>> parse_http_date("Thu, 01 Jan 1970 00:01:00 GMT")
        60.0
        >>> parse_http_date("0") is None
        True
    """
    if value is None:
        return None
    try:
        return _parsed[value]
    except KeyError:
        pass
    if len(_parsed) >= 64:
        _parsed.clear()
    when = _parsed[value] = _parse_http_date(value)
    return when


_parsed: dict[str, float | None] = {}


def _parse_http_date(value: str) -> float | None:
    from email.utils import parsedate_to_datetime  # costly: never on a cache hit

    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _seconds(value: str | None) -> float | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 12:
        return None
    return float(value)


def forbids_storing(headers: Mapping[str, str]) -> bool:
    """Whether the response must not be stored (``Cache-Control: no-store``).

    Example:
        >>> forbids_storing({"cache-control": "private, no-store"})
        True
    """
    return "no-store" in directives(headers.get("cache-control"))


def is_immutable(headers: Mapping[str, str]) -> bool:
    """Whether the server says the response never changes (``immutable``).

    Example:
        >>> is_immutable({"cache-control": "max-age=31536000, immutable"})
        True
    """
    return "immutable" in directives(headers.get("cache-control"))


def freshness_lifetime(headers: Mapping[str, str], *, received: float) -> float | None:
    """Seconds the response is fresh for from its ``Date``; None when nothing bounds it.

    ``received`` stands in for a missing or invalid ``Date``.

    Example:
        >>> freshness_lifetime({"cache-control": "max-age=60"}, received=0.0)
        60.0
        >>> freshness_lifetime({"expires": "0"}, received=0.0)
        0.0
        >>> freshness_lifetime({"last-modified": "Thu, 01 Jan 1970 00:00:00 GMT",
        ...                     "date": "Fri, 11 Jan 1970 00:00:00 GMT"}, received=0.0)
        86400.0
        >>> freshness_lifetime({}, received=0.0) is None
        True
    """
    found = directives(headers.get("cache-control"))
    if "no-cache" in found:
        return 0.0
    if "max-age" in found:
        seconds = _seconds(found["max-age"])
        return 0.0 if seconds is None else seconds
    date = parse_http_date(headers.get("date"))
    if date is None:
        date = received
    if "expires" in headers:
        expires = parse_http_date(headers["expires"])
        return 0.0 if expires is None else max(0.0, expires - date)
    modified = parse_http_date(headers.get("last-modified"))
    if modified is not None:
        since = max(0.0, date - modified)
        return min(HEURISTIC_MAX, max(HEURISTIC_MIN, HEURISTIC_FRACTION * since))
    if "etag" in headers:
        return HEURISTIC_MIN
    return None


def fresh_until(headers: Mapping[str, str], *, received: float) -> float | None:
    """The time (Unix, our clock) until which a response received at ``received`` is fresh.

    None when nothing bounds its freshness (see the module's rules).

    Example:
        >>> fresh_until({"cache-control": "max-age=60", "age": "20"}, received=1000.0)
        1040.0
        >>> fresh_until({"cache-control": "no-cache"}, received=1000.0)
        1000.0
    """
    lifetime = freshness_lifetime(headers, received=received)
    if lifetime is None:
        return None
    age = _seconds(headers.get("age")) or 0.0
    return received + max(0.0, lifetime - age)


def is_fresh(
    *,
    now: float,
    checked: float,
    fresh_until: float | None,
    immutable: bool,
    max_age: float | None,
) -> bool:
    """Whether an entry last checked with its server at ``checked`` may be used at ``now``.

    ``fresh_until`` and ``immutable`` are what the server said (`fresh_until`,
    `is_immutable`); ``max_age``, the setting, replaces the former. This is
    the one rule both the library and the command line's hit path apply.

    Example:
        >>> is_fresh(now=50.0, checked=0.0, fresh_until=60.0, immutable=False, max_age=None)
        True
        >>> is_fresh(now=50.0, checked=0.0, fresh_until=60.0, immutable=False, max_age=10)
        False
        >>> is_fresh(now=9e9, checked=0.0, fresh_until=1.0, immutable=True, max_age=0)
        True
    """
    if immutable:
        return True
    if max_age is not None:
        return now - checked < max_age
    return fresh_until is None or now < fresh_until


def conditional_headers(stored: Mapping[str, str]) -> dict[str, str]:
    """The headers that ask the server whether a stored response is still current.

    ``If-None-Match`` with the ``ETag`` (weak ones too: If-None-Match
    compares weakly), ``If-Modified-Since`` with the ``Last-Modified`` as
    it was sent. Empty when the response had no validator: then only a
    full download can tell.

    Example:
        >>> conditional_headers({"etag": 'W/"v1"',
        ...                      "last-modified": "Sat, 01 Jan 2000 00:00:00 GMT"})
        {'If-None-Match': 'W/"v1"', 'If-Modified-Since': 'Sat, 01 Jan 2000 00:00:00 GMT'}
        >>> conditional_headers({"date": "Thu, 01 Jan 1970 00:00:00 GMT"})
        {}
    """
    headers: dict[str, str] = {}
    if stored.get("etag"):
        headers["If-None-Match"] = stored["etag"]
    if stored.get("last-modified"):
        headers["If-Modified-Since"] = stored["last-modified"]
    return headers


def refreshed(stored: Mapping[str, str], answer: Mapping[str, str]) -> dict[str, str]:
    """The headers an entry keeps after a ``304`` with headers ``answer`` (RFC 9111 4.3.4).

    What the ``304`` says replaces what was stored; the ``Date`` and ``Age``
    are the ``304``'s own or none, since the old ones describe the old
    answer.

    Example:
        >>> refreshed({"etag": '"a"', "cache-control": "max-age=1", "date": "x"},
        ...           {"cache-control": "max-age=60"})
        {'etag': '"a"', 'cache-control': 'max-age=60'}
    """
    kept = {k: v for k, v in stored.items() if k not in ("date", "age")}
    kept.update(answer)
    return kept
