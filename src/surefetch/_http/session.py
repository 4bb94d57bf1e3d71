"""The one place that builds and configures the aiohttp session of the data path."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp


class Sessions:
    """One aiohttp session for a batch of fetches, made only on the first cache miss.

    ``connect_timeout`` bounds making a connection and ``read_timeout`` the
    silence while reading; ``limit`` is the connection pool's size.

    Example:
        >>> import asyncio
        >>> sessions = Sessions(connect_timeout=10.0, read_timeout=30.0)
        >>> asyncio.run(sessions.close())  # nothing was made, nothing to close
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float, limit: int = 100) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        """The session, made on first use."""
        if self._session is None:
            import ssl

            import aiohttp

            from surefetch._http.aiohttp_support import disable_hidden_retries
            from surefetch._version import __version__

            # Verification is always on. aiohttp's own verified context already
            # honours SSL_CERT_FILE through OpenSSL; one of our own is made only
            # when the variable is set, to be explicit, since making one costs
            # tens of milliseconds per process.
            cafile = os.environ.get("SSL_CERT_FILE") or None
            context: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=cafile) if cafile else True
            )
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._connect_timeout, sock_read=self._read_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=context),
                timeout=timeout,
                trust_env=True,
                auto_decompress=False,
                # Older aiohttp reads 64 KiB at a time unless told otherwise.
                read_bufsize=1 << 20,
                headers={"User-Agent": f"surefetch/{__version__}"},
            )
            disable_hidden_retries(self._session)
        return self._session

    async def close(self) -> None:
        """Close the session, if one was made."""
        if self._session is not None:
            await self._session.close()
            self._session = None
