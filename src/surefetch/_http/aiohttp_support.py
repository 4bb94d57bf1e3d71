"""What surefetch knows of aiohttp's exception types and internals: nowhere else.

Five pieces of knowledge, each kept here so that the rest of surefetch
speaks of transports in general:

* what aiohttp's exceptions mean for a retry (`classify_aiohttp_error`, which
  this module registers with the retry layer when it is imported);
* that a session repeats an idempotent request on its own when a connection
  drops (`disable_hidden_retries`);
* where the body bytes that arrived before a failure wait (`salvage_buffered`);
* how to make a session look closed without closing its connections (`abandon`);
* which proxy aiohttp's ``trust_env`` would take for a URL (`environment_proxy`).

Nothing here imports aiohttp when it is imported: its types are looked up in ``sys.modules``,
since none of its exceptions can exist before it is loaded.
"""

from __future__ import annotations

import collections
import sys

from surefetch._retry.classify import (
    Decision,
    classify_link,
    classify_status,
    describe,
    iter_chain,
    register_library_rule,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp


def classify_aiohttp_error(exc: BaseException) -> Decision | None:
    """What an aiohttp exception means for a retry; None for anything else.

    Example:
        >>> classify_aiohttp_error(ValueError("not aiohttp's")) is None
        True
    """
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None:
        return None
    if isinstance(
        exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ServerFingerprintMismatch)
    ):
        return Decision.fatal(f"TLS certificate error: {exc}")
    held = getattr(exc, "os_error", None)
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(held, OSError):
        # Decide on what the connector met: a DNS name that does not exist
        # is fatal even though aiohttp calls it a connection error.
        return classify_link(held) or Decision.transient(describe(exc))
    if isinstance(exc, aiohttp.ClientResponseError):
        return classify_status(exc.status)
    if isinstance(exc, aiohttp.ClientPayloadError):
        # Name what broke the body, not aiohttp's wrapper around it.
        inner = [e for e in iter_chain(exc) if isinstance(e, OSError) and e is not exc]
        if inner:
            text = describe(inner[0])
        elif "ConnectionResetError" in str(exc):
            # aiohttp names the connection error only in its message.
            text = "connection reset by peer before the body was complete"
        else:
            text = "the response body ended early"
        return Decision.transient(text)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return Decision.transient(describe(exc))
    return None


register_library_rule("aiohttp", classify_aiohttp_error, holds=("os_error", "certificate_error"))


def plain_connect_error(error: BaseException, url: str) -> ConnectionError | None:
    """aiohttp's failure to connect to a plain ``http://`` URL, told without TLS words.

    aiohttp says ``ssl:default`` of every connection it could not make, TLS
    or not; for a plain http URL that misleads. The error returned keeps
    the retry decision of the original (a name that does not exist stays
    fatal). None for anything else, which is raised as it is.

    Example:
        >>> plain_connect_error(ValueError("not aiohttp's"), "http://h/") is None
        True
    """
    aiohttp = sys.modules.get("aiohttp")
    if (
        aiohttp is None
        or not url.lower().startswith("http://")
        or not isinstance(error, aiohttp.ClientConnectorError)
        or isinstance(error, aiohttp.ClientSSLError)
    ):
        return None
    from surefetch._retry.classify import classify

    held = error.os_error
    reason = held.strerror or str(held) or type(held).__name__
    plain = ConnectionError(f"Cannot connect to host {error.host}:{error.port} [{reason}]")
    plain.surefetch_transient = classify(error).retry  # type: ignore[attr-defined]
    return plain


def disable_hidden_retries(session: aiohttp.ClientSession) -> None:
    """Stop ``session`` from repeating a request by itself when a connection drops.

    aiohttp quietly repeats an idempotent request once when the connection
    drops: a retry loop hidden inside ours, which would make a 3-retry policy
    send up to 8 requests and the attempt count lie. Every retry goes through
    the shared budget instead.
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def salvage_buffered(content: object, size: int, total: int | None) -> bytes:
    """The body bytes aiohttp had received when the connection failed.

    aiohttp raises the connection error on the next read and drops what its
    buffer still holds (often a few hundred KiB), which the next attempt
    would then download again. Those bytes arrived in order before the
    failure, so they are taken from the buffer (a private ``deque`` of
    ``bytes`` that has been stable across aiohttp 3.x). If the buffer does
    not look as expected, or would overrun the body's length (``size`` bytes
    are already written of ``total``), nothing is taken and the bytes are
    simply downloaded again.

    Example:
        >>> salvage_buffered(object(), 0, None)
        b''
    """
    buffer = getattr(content, "_buffer", None)
    offset = getattr(content, "_buffer_offset", 0)
    if not isinstance(buffer, collections.deque) or not isinstance(offset, int):
        return b""
    if not all(isinstance(piece, bytes) for piece in buffer):
        return b""
    data = b"".join(buffer)[offset:]
    if total is not None and size + len(data) > total:
        return b""
    return data


def abandon(session: aiohttp.ClientSession) -> None:
    """Make ``session`` look closed without touching its connections (in a forked child).

    A child process inherits the parent's pooled connections, which are the
    parent's: closing them from the child would send a TLS close to the
    parent's peer and change the parent's event loop's selector. So the
    child marks the session and its connector closed, which also keeps
    their finalizers from warning about them, and never uses them again.

    Example:
        >>> import asyncio, aiohttp
        >>> async def made() -> aiohttp.ClientSession:
        ...     return aiohttp.ClientSession()
        >>> session = asyncio.run(made())
        >>> abandon(session)
        >>> session.closed
        True
    """
    connector = session.connector
    if connector is not None and hasattr(connector, "_closed"):
        connector._closed = True
    if hasattr(session, "_connector"):
        session._connector = None


async def environment_proxy(url: str) -> tuple[object | None, dict[str, str] | None]:
    """The proxy for ``url`` as aiohttp's ``trust_env`` finds it, and the headers for it.

    Sessions are made without ``trust_env``: with it, aiohttp runs two
    lookups in worker threads for every request (this one, and the netrc
    file, which `surefetch._http.netrc_auth` reads for both transports).
    Here the lookup runs only when the environment may name a proxy, and
    then in a worker thread as aiohttp runs it (on macOS and Windows it
    reads the system's settings). The proxy's credentials come back as a
    ``Proxy-Authorization`` header (aiohttp 3.14 deprecates ``proxy_auth``).

    Example:
        >>> import asyncio, os
        >>> os.environ.get("HTTP_PROXY") or asyncio.run(environment_proxy("http://127.0.0.1/"))
        (None, None)
    """
    from surefetch._http.proxy_env import environment_may_name_a_proxy

    if not environment_may_name_a_proxy():
        return None, None
    import asyncio

    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        proxy, auth = await asyncio.to_thread(get_env_proxy_for_url, URL(url))
    except LookupError:
        return None, None
    return proxy, None if auth is None else {"Proxy-Authorization": auth.encode()}
