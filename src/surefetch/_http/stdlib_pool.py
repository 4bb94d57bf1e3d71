"""The standard-library transport's connections: proxies, TLS, timeouts, and keep-alive.

`http.client` parses HTTP; this module only decides where to connect and
keeps connections for the next call. One pool per process, shared by every
thread: a connection is taken out while a request uses it and put back when
its reply was read to the end, keyed by (scheme, host, port, proxy), so a
loop of synchronous fetches from one server talks over one connection, as
`requests.Session` does, without a thread of its own. A kept connection that
the server closed meanwhile is seen before it is used (its socket reads as
ready) and dropped, as aiohttp's pool drops it, so a stale socket never costs
an attempt. After ``fork`` the child forgets the parent's connections without
closing them (their sockets are the parent's too); at exit they are closed.

Proxies come from the environment as aiohttp's ``trust_env`` takes them
(`urllib.request.getproxies` and ``proxy_bypass``): plain ``http`` goes to the
proxy with the absolute URL, ``https`` through a ``CONNECT`` tunnel; the
proxy's credentials (in its URL) go in ``Proxy-Authorization``. The process's
one verifying TLS context (`surefetch._http.tls`) secures every ``https``
connection; a plain ``http`` one builds none.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import re
import select
import socket
import threading
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from surefetch._errors import ConfigError, DownloadError
from surefetch._http.headers import basic_authorization
from surefetch._http.proxy_env import environment_may_name_a_proxy
from surefetch._http.tls import tls_for
from surefetch._retry.classify import Decision, classify_status, describe, register_library_rule
from surefetch._url import redact_url
from surefetch._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

USER_AGENT = f"surefetch/{__version__}"

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Idle connections kept per (scheme, host, port, proxy): enough for a few
# threads fetching from one server at once.
_KEEP_PER_KEY = 8


class Proxy(NamedTuple):
    """A proxy from the environment: where it is and the header its credentials make."""

    url: str
    host: str
    port: int
    authorization: str | None


def proxy_for(url: str) -> Proxy | None:
    """The proxy for ``url`` from the environment (``HTTP(S)_PROXY``, ``NO_PROXY``), or None.

    Raises `ConfigError` for a proxy URL that is no ``http://`` URL: only
    the aiohttp transport speaks TLS to a proxy (setting ``transport``).

    Example:
        >>> import os
        >>> os.environ.get("HTTP_PROXY") or proxy_for("http://127.0.0.1/x") is None
        True
    """
    if not environment_may_name_a_proxy():
        return None
    import urllib.request

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    configured = urllib.request.getproxies().get(scheme)
    if not configured or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    if "://" not in configured:
        configured = "http://" + configured
    proxy = urlsplit(configured)
    if proxy.scheme.lower() != "http" or not proxy.hostname:
        raise ConfigError(
            f"The proxy {redact_url(configured)} for {scheme} URLs is not valid for the "
            "standard-library transport: expected an http:// proxy URL (the aiohttp "
            "transport, SUREFETCH_TRANSPORT=aiohttp, speaks TLS to a proxy)"
        )
    username = None if proxy.username is None else unquote(proxy.username)
    password = None if proxy.password is None else unquote(proxy.password)
    return Proxy(
        url=f"http://{proxy.hostname}:{proxy.port or 80}",
        host=proxy.hostname,
        port=proxy.port or 80,
        authorization=basic_authorization(username, password),
    )


def speaks_proxies_for(urls: Iterable[str]) -> bool:
    """Whether every proxy that the environment names for ``urls`` is one this transport speaks.

    No proxy is fine; a URL that cannot be parsed too (its fetch says what
    is wrong with it). The environment is scanned once when it names no
    proxy, not once per URL.

    Example:
        >>> speaks_proxies_for(["http://127.0.0.1/a", "not a URL"])
        True
    """
    if not environment_may_name_a_proxy():
        return True
    for url in urls:
        try:
            proxy_for(url)
        except ConfigError:
            return False
        except ValueError:
            continue
    return True


class Target(NamedTuple):
    """Where one request goes: the connection's key, and the request line's target."""

    scheme: str
    host: str
    port: int
    proxy: Proxy | None
    path: str
    context: ssl.SSLContext | None

    @property
    def key(self) -> _Key:
        """What a kept connection must share to serve this target.

        For https that includes the TLS context: a connection verified
        against an old ``SSL_CERT_FILE`` is not reused once it changed.
        """
        proxy = None if self.proxy is None else self.proxy.url
        return (self.scheme, self.host, self.port, proxy, id(self.context))


_Key = tuple[str, str, int, "str | None", int]


def target_of(url: str) -> Target:
    """The `Target` of a request for ``url`` (an http(s) URL without userinfo)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[scheme]
    proxy = proxy_for(url)
    if proxy is not None and scheme == "http":
        path = url.split("#", 1)[0]  # a proxy is sent the absolute URL
    else:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, proxy, path, tls_for(url))


class ProxyTunnelError(DownloadError):
    """A proxy refused to open a tunnel (``CONNECT``); retried as its status says.

    Example:
        >>> ProxyTunnelError("refused", status=503).surefetch_transient
        True
    """

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.surefetch_transient = status is not None and classify_status(status).retry


_TUNNEL_STATUS = re.compile(r"Tunnel connection failed: (\d{3})")


def connect(target: Target, *, timeout: float) -> http.client.HTTPConnection:
    """A new connection for ``target``, connected (TCP, tunnel, TLS) within ``timeout``."""
    proxy = target.proxy
    host, port = (target.host, target.port) if proxy is None else (proxy.host, proxy.port)
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=target.context
        )
        if proxy is not None:
            headers = {}
            if proxy.authorization is not None:
                headers["Proxy-Authorization"] = proxy.authorization
            connection.set_tunnel(target.host, target.port, headers=headers)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection._create_connection = _create_connection  # type: ignore[attr-defined]
    try:
        connection.connect()
    except OSError as error:
        connection.close()
        # http.client tells a refused CONNECT only in its message.
        tunnel = _TUNNEL_STATUS.match(str(error))
        if proxy is not None and error.errno is None and tunnel is not None:
            raise ProxyTunnelError(
                f"The proxy {proxy.url} refused the tunnel to {target.host}:{target.port}: {error}",
                status=int(tunnel[1]),
            ) from error
        raise _cannot_connect(error, host, port) from error
    return connection


def _create_connection(
    address: tuple[str, int], timeout: float | None, source_address: object = None
) -> socket.socket:
    """`socket.create_connection`, given a plain ASCII host name as bytes.

    The socket module encodes a ``str`` host with the ``idna`` codec, whose
    import (with ``stringprep`` and ``unicodedata``) costs a small miss more
    than a millisecond; a name the codec would pass through unchanged goes
    as bytes instead. Any other (non-ASCII, or a label that is empty or
    longer than 63 characters, which the codec refuses) goes as it is.

    Example:
        >>> _ascii_host("example.org"), _ascii_host("bücher.example"), _ascii_host("a..b")
        (b'example.org', 'bücher.example', 'a..b')
    """
    host, port = address
    return socket.create_connection((_ascii_host(host), port), timeout, source_address)  # type: ignore[arg-type]


def _ascii_host(host: str) -> str | bytes:
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if host.isascii() and all(0 < len(label) < 64 for label in labels):
        return host.encode("ascii")
    return host


def _cannot_connect(error: OSError, host: str, port: int) -> OSError:
    """The error of a failed connection, naming the host as aiohttp's does.

    A TLS error stays what it is (a certificate error must stay fatal, and
    be told as one); any other keeps its retry decision.
    """
    import ssl

    if isinstance(error, ssl.SSLError):
        return error
    from surefetch._retry.classify import classify

    reason = error.strerror or str(error) or type(error).__name__
    plain = ConnectionError(f"Cannot connect to host {host}:{port} [{reason}]")
    plain.surefetch_transient = classify(error).retry  # type: ignore[attr-defined]
    return plain


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether a kept connection was closed by its server (or has stray bytes): not reusable."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Pool:
    """Idle kept-alive connections, shared by every thread of the process.

    At most ``keep_per_key`` idle ones are kept per (scheme, host, port,
    proxy): the process's pool keeps a few, a `fetch_many` batch one per
    thread, so that none of its threads connects again between files.

    Example:
        >>> pool = Pool()
        >>> pool.idle_count()
        0
    """

    def __init__(self, *, keep_per_key: int = _KEEP_PER_KEY) -> None:
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._keep = keep_per_key

    def take(self, target: Target, *, timeout: float) -> http.client.HTTPConnection:
        """A kept connection for ``target`` that is still open, else a new one."""
        key = target.key
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None:
                return connect(target, timeout=timeout)
            if not _dropped(connection):
                return connection
            connection.close()

    def give_back(self, target: Target, connection: http.client.HTTPConnection) -> None:
        """Keep ``connection`` (its last reply read to the end) for the next request."""
        key = target.key
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._keep:
                idle.append(connection)
                return
        connection.close()

    def idle_count(self) -> int:
        """How many connections wait for a request (for tests)."""
        with self._lock:
            return sum(len(idle) for idle in self._idle.values())

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            kept = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for connection in kept:
            connection.close()

    def forget(self) -> None:
        """In a forked child: let go of the parent's connections without touching them.

        Each socket's descriptor is detached and closed, which closes only
        the child's copy: no TLS close, no FIN reaches the parent's peer.
        """
        self._lock = threading.Lock()  # another thread may have held it at the fork
        idle, self._idle = self._idle, {}
        for connection in (c for kept in idle.values() for c in kept):
            sock, connection.sock = connection.sock, None
            if sock is not None:
                with contextlib.suppress(OSError):
                    os.close(sock.detach())


pool = Pool()
"""The process's pool."""

atexit.register(pool.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=pool.forget)


def classify_http_client_error(exc: BaseException) -> Decision | None:
    """What an `http.client` error means for a retry: a broken reply is transient.

    A status line or header that cannot be parsed, or a connection that the
    server closed before answering, is what a dropped or garbled connection
    looks like, as aiohttp's `ServerDisconnectedError` is.

    Example:
        >>> classify_http_client_error(http.client.BadStatusLine("")).retry
        True
        >>> classify_http_client_error(ValueError("not ours")) is None
        True
    """
    if isinstance(exc, http.client.HTTPException):
        return Decision.transient(describe(exc))
    return None


register_library_rule("http.client", classify_http_client_error)


def transport_is_stdlib(urls: Iterable[str]) -> bool:
    """Whether downloads of ``urls`` go over the standard-library transport.

    The ``transport`` setting decides: ``aiohttp`` never, ``stdlib`` always,
    and ``auto`` (the default) unless a proxy in the environment is one that
    only aiohttp speaks (TLS to the proxy).

    Example:
        >>> transport_is_stdlib(["https://example.org/a.tar.gz"])
        True
    """
    from surefetch._config import TRANSPORT, resolve as resolve_setting

    choice = resolve_setting(TRANSPORT)
    if choice != "auto":
        return choice == "stdlib"
    return speaks_proxies_for(urls)
