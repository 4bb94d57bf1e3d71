"""The one place that builds and configures the aiohttp session of the data path."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import aiohttp


class Sessions:
    """The aiohttp session for a batch of fetches, made only on the first cache miss.

    ``connect_timeout`` bounds making a connection and ``read_timeout`` the
    silence while reading; ``limit`` is the connection pool's size. With
    ``keep``, the session is the one that surefetch's loop thread keeps for
    these settings (see `surefetch._run_sync`), so that its connections stay
    alive from one synchronous call to the next; `close` then leaves it open,
    and the loop thread closes it at exit. ``keep`` is only for coroutines
    running on that thread.

    Example:
        >>> import asyncio
        >>> sessions = Sessions(connect_timeout=10.0, read_timeout=30.0)
        >>> asyncio.run(sessions.close())  # nothing was made, nothing to close
    """

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, limit: int = 100, keep: bool = False
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._limit = limit
        self._keep = keep
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        """The session, made (or, with ``keep``, found) on first use."""
        if self._session is None:
            settings = (self._connect_timeout, self._read_timeout, self._limit)
            self._session = _kept_session(settings) if self._keep else _new_session(settings)
        return self._session

    async def close(self) -> None:
        """Close the session, if one was made and it is not a kept one."""
        session, self._session = self._session, None
        if session is not None and not self._keep:
            await session.close()


_Settings = tuple[float, float, int]

# The sessions kept by surefetch's loop thread, one per settings. After a fork
# the child's loop thread is a new one, and these (the parent's) are forgotten.
_kept: dict[_Settings, aiohttp.ClientSession] = {}


def _kept_session(settings: _Settings) -> aiohttp.ClientSession:
    session = _kept.get(settings)
    if session is None or session.closed:
        from surefetch._run_sync import at_loop_shutdown

        session = _kept[settings] = _new_session(settings)

        async def close() -> None:
            _kept.pop(settings, None)
            await session.close()

        at_loop_shutdown(close)
    return session


def _new_session(settings: _Settings) -> aiohttp.ClientSession:
    import aiohttp

    from surefetch._http.aiohttp_support import disable_hidden_retries
    from surefetch._version import __version__

    connect_timeout, read_timeout, limit = settings
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    # No TLS context here: each https request carries the process's own
    # (surefetch._http.tls), made on the first one; plain http needs none.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=timeout,
        trust_env=True,
        auto_decompress=False,
        # Older aiohttp reads 64 KiB at a time unless told otherwise.
        read_bufsize=1 << 20,
        headers={"User-Agent": f"surefetch/{__version__}"},
    )
    disable_hidden_retries(session)
    return session


def _forget_after_fork() -> None:
    """In a forked child: drop the parent's sessions without closing their connections."""
    from surefetch._http.aiohttp_support import abandon

    for session in _kept.values():
        abandon(session)
    _kept.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
