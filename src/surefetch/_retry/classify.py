"""Classification: is an error worth another attempt?

Pure logic, no I/O. The default `classify` walks the whole chain of an
exception (``__cause__``, ``__context__``, members of an ``ExceptionGroup``
and exceptions held in another exception's arguments) so that a connection
reset that surfaces as "Failed to extract archive" is still recognised as the
network error it is. The first link, outermost first, that is known to be
either transient or fatal decides; a chain with no known link is fatal.

Standard library types (asyncio, ssl, socket) are looked up in ``sys.modules``
rather than imported: if a module is not loaded, none of its exceptions can
exist, and a cache hit on the command line stays free of the HTTP stack.
What a third-party transport's exceptions mean is not known here: the
transport registers a rule for its library with `register_library_rule`, and
the rule is consulted only while that library is loaded.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from surefetch._errors import HTTPStatusError, RetriesExhausted

_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.ENETRESET,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
    }
)
_TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about an error: retry (perhaps after a given time) or give up.

    Example:
        >>> Decision.retry_after(2.0, "HTTP 429").after
        2.0
        >>> Decision.fatal("HTTP 404").retry
        False
    """

    retry: bool
    reason: str
    after: float | None = None

    @classmethod
    def transient(cls, reason: str) -> Decision:
        """Retry with the policy's backoff.

        Example:
            >>> Decision.transient("ConnectionResetError: reset")
            Decision(retry=True, reason='ConnectionResetError: reset', after=None)
        """
        return cls(True, reason)

    @classmethod
    def retry_after(cls, seconds: float, reason: str) -> Decision:
        """Retry after the server-requested time (capped by the policy).

        Example:
            >>> Decision.retry_after(5.0, "HTTP 503, Retry-After 5s")
            Decision(retry=True, reason='HTTP 503, Retry-After 5s', after=5.0)
        """
        return cls(True, reason, seconds)

    @classmethod
    def fatal(cls, reason: str) -> Decision:
        """Do not retry.

        Example:
            >>> Decision.fatal("HTTP 404")
            Decision(retry=False, reason='HTTP 404', after=None)
        """
        return cls(False, reason)


def classify_status(status: int, *, retry_after: float | None = None) -> Decision:
    """Classify an HTTP status: 408, 429 and 5xx are transient, the rest fatal.

    Example:
        >>> classify_status(503, retry_after=5.0)
        Decision(retry=True, reason='HTTP 503, Retry-After 5s', after=5.0)
        >>> classify_status(404).retry
        False
    """
    reason = f"HTTP {status}"
    if status in _TRANSIENT_STATUSES or 500 <= status <= 599:
        if retry_after is not None and status in (429, 503):
            return Decision.retry_after(retry_after, f"{reason}, Retry-After {retry_after:g}s")
        return Decision.transient(reason)
    return Decision.fatal(reason)


def iter_chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from ``exc``, outermost first, each once.

    Follows ``__cause__``, ``__context__``, ``ExceptionGroup`` members and
    exceptions passed as arguments of another exception or held in the
    attributes that library rules declared (the ``OSError`` that library
    errors carry).

    Example:
        >>> try:
        ...     try:
        ...         raise ConnectionResetError(104, "reset")
        ...     except OSError as e:
        ...         raise RuntimeError("extract failed") from e
        ... except RuntimeError as outer:
        ...     [type(e).__name__ for e in iter_chain(outer)]
        ['RuntimeError', 'ConnectionResetError']
    """
    seen: set[int] = set()
    queue = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked: list[BaseException] = []
        if current.__cause__ is not None:
            linked.append(current.__cause__)
        if current.__context__ is not None:
            linked.append(current.__context__)
        members = getattr(current, "exceptions", None)
        if isinstance(members, (tuple, list)):
            linked.extend(m for m in members if isinstance(m, BaseException))
        linked.extend(a for a in current.args if isinstance(a, BaseException))
        for attribute in _held_attributes:
            held = getattr(current, attribute, None)
            if isinstance(held, BaseException):
                linked.append(held)
        queue.extend(linked)


LibraryRule = Callable[[BaseException], "Decision | None"]
"""What a library's exception means: a decision, or None when the rule does not know it."""

_library_rules: dict[str, LibraryRule] = {}
# Attributes under which library errors keep the error they wrap, besides args.
_held_attributes: tuple[str, ...] = ()


def register_library_rule(library: str, rule: LibraryRule, *, holds: tuple[str, ...] = ()) -> None:
    """Teach the default `classify` the exceptions of ``library`` (a top-level module name).

    The rule sees each link of a chain before the generic rules for OS and
    timeout errors do, and only while ``library`` is in ``sys.modules``.
    ``holds`` names attributes in which the library's errors keep the error
    they wrap (an ``os_error``), so that `iter_chain` follows them.
    Registering again for the same library replaces the rule.

    Example:
        >>> class Hiccup(Exception): ...
        >>> register_library_rule("doctest", lambda e: Decision.transient("hiccup")
        ...                       if isinstance(e, Hiccup) else None)
        >>> classify(Hiccup()).retry
        True
        >>> del _library_rules["doctest"]
    """
    global _held_attributes
    _library_rules[library] = rule
    _held_attributes = tuple(dict.fromkeys((*_held_attributes, *holds)))


def describe(exc: BaseException) -> str:
    """``Type: message``, or the type alone: how an error reads in a decision's reason.

    Example:
        >>> describe(ConnectionResetError("reset"))
        'ConnectionResetError: reset'
    """
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def classify_link(exc: BaseException) -> Decision | None:
    """Decide for one link of a chain, or None when it says nothing.

    Example:
        >>> classify_link(ValueError("no idea")) is None
        True
    """
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return Decision.fatal(f"TLS certificate error: {exc}")
    if isinstance(exc, HTTPStatusError):
        return classify_status(exc.status, retry_after=exc.retry_after)
    if isinstance(exc, RetriesExhausted):
        return None  # look through to the error that was retried
    if getattr(exc, "surefetch_transient", None) is True:
        return Decision.transient(describe(exc))
    if getattr(exc, "surefetch_transient", None) is False:
        return Decision.fatal(describe(exc))

    for library, rule in tuple(_library_rules.items()):
        if library in sys.modules:
            decision = rule(exc)
            if decision is not None:
                return decision
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(exc, (asyncio.TimeoutError, asyncio.IncompleteReadError)):
        return Decision.transient(describe(exc))
    http_client = sys.modules.get("http.client")
    if http_client is not None and isinstance(exc, http_client.IncompleteRead):
        return Decision.transient(describe(exc))

    socket = sys.modules.get("socket")
    if socket is not None and isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return Decision.transient(describe(exc))
        return Decision.fatal(describe(exc))
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Decision.transient(describe(exc))
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return Decision.transient(describe(exc))
    if isinstance(exc, OSError) and exc.errno is not None:
        # An OSError with an errno is a definite answer from the OS: a full
        # disk or a missing file is no network hiccup, whatever it interrupted.
        if exc.errno in _TRANSIENT_ERRNOS:
            return Decision.transient(describe(exc))
        return Decision.fatal(describe(exc))
    if type(exc).__name__ in ("StreamReset", "StreamResetError", "RemoteProtocolError"):
        # HTTP/2 stream resets from h2-based clients, matched by name so that
        # no such client needs importing.
        return Decision.transient(describe(exc))
    return None


def classify(exc: BaseException) -> Decision:
    """The default classifier: transient network and server errors retry.

    Transient: connection reset/aborted/refused, broken pipe, timeouts,
    unexpected EOF and incomplete reads, DNS temporary failure, HTTP 408, 429
    and 5xx (with Retry-After for 429 and 503), HTTP/2 stream resets. A
    stream that ended early (EOFError) counts as transient only when no other
    link of the chain decides, since a failed download also ends a stream.
    Fatal: TLS certificate errors, other 4xx, and anything unknown. An
    exception may also declare itself with a ``surefetch_transient`` attribute.

    Example:
        >>> classify(ConnectionResetError(104, "Connection reset by peer")).retry
        True
        >>> classify(ValueError("bad input")).retry
        False
    """
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        return Decision.fatal(type(exc).__name__)
    chain = list(iter_chain(exc))
    for link in chain:
        decision = classify_link(link)
        if decision is not None:
            return decision
    # Only when nothing in the chain decides: a stream that ended early
    # (a decompressor's EOFError, tar's "unexpected end of data") is what a
    # body truncated without any transport error looks like.
    for link in chain:
        if _is_unexpected_end(link):
            return Decision.transient(describe(link))
    return Decision.fatal(describe(exc))


def _is_unexpected_end(exc: BaseException) -> bool:
    if isinstance(exc, EOFError):
        return True
    tarfile = sys.modules.get("tarfile")
    return (
        tarfile is not None and isinstance(exc, tarfile.ReadError) and "unexpected end" in str(exc)
    )
