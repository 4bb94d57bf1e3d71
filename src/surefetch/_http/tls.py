"""The one TLS context of the process: built on the first https request, then reused.

Building a verifying context means reading the CA bundle (tens of
milliseconds), so it is made once and shared by every session and thread;
it is made again only when what it was built from changes
(``SSL_CERT_FILE`` or ``SSL_CERT_DIR``). A plain ``http`` URL never builds
one. It always verifies: surefetch never leaves the choice to the
transport's defaults, which differ between versions.
"""

from __future__ import annotations

import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

_Key = tuple[str | None, str | None]

_lock = threading.Lock()
_made: tuple[_Key, ssl.SSLContext] | None = None


def _trust_source() -> _Key:
    """What the context trusts: the bundle file and the directory the environment names."""
    return (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


def tls_context() -> ssl.SSLContext:
    """The process's verifying TLS context, made on first use or when its sources change.

    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``, when set, are what it trusts;
    otherwise the platform's default certificate store.

    Example:
        >>> context = tls_context()
        >>> context is tls_context(), context.check_hostname
        (True, True)
    """
    global _made
    key = _trust_source()
    made = _made
    if made is not None and made[0] == key:
        return made[1]
    with _lock:
        made = _made
        if made is not None and made[0] == key:
            return made[1]
        import ssl

        cafile, capath = key
        if cafile is None and capath is None:
            context = ssl.create_default_context()
        else:
            context = ssl.create_default_context(cafile=cafile, capath=capath)
        _made = (key, context)
        return context


def tls_for(url: str) -> ssl.SSLContext | None:
    """The context for a request to ``url``: `tls_context` for ``https``, None otherwise.

    Example:
        >>> tls_for("http://example.org/a") is None
        True
        >>> tls_for("HTTPS://example.org/a") is tls_context()
        True
    """
    if url[:8].lower() != "https://":
        return None
    return tls_context()
