"""The one place that builds and configures the aiohttp session of the data path."""

from __future__ import annotations

import atexit
import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncGenerator

    import aiohttp


class Sessions:
    """The aiohttp session for a batch of fetches, made only on the first cache miss.

    ``connect_timeout`` bounds making a connection and ``read_timeout`` the
    silence while reading; ``limit`` is the connection pool's size. With
    ``keep``, the session is the one kept for these settings by the running
    event loop, so that its connections stay alive from one call to the
    next; `close` then leaves it open. On surefetch's loop thread (see
    `surefetch._run_sync`) that loop closes it at exit; on any other loop it
    is closed when the loop shuts down its asynchronous generators, which
    ``asyncio.run`` does before it closes the loop (`_loop_session`).

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
            if not self._keep:
                self._session = _new_session(settings)
            else:
                from surefetch._run_sync import on_loop_thread

                kept = _kept_session if on_loop_thread() else _loop_session
                self._session = kept(settings)
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


class _LoopSessions:
    """The sessions one event loop keeps, and the generator that closes them with the loop."""

    def __init__(self) -> None:
        self.sessions: dict[_Settings, aiohttp.ClientSession] = {}
        self.closer: AsyncGenerator[None, None] | None = None


# The sessions of event loops other than surefetch's own, by loop. An entry
# leaves when its loop shuts down its async generators; one whose loop was
# closed without that is found closed at the next call, or at exit, and its
# sessions abandoned (marked closed: no warnings; the OS closes the sockets).
_per_loop: dict[asyncio.AbstractEventLoop, _LoopSessions] = {}


def _loop_session(settings: _Settings) -> aiohttp.ClientSession:
    """The session that the running loop keeps for ``settings``, made on first use.

    The loop's first session starts an asynchronous generator, suspended
    until the loop's ``shutdown_asyncgens`` closes it: its ``finally``
    closes the loop's sessions then, while the loop still runs, so that
    ``asyncio.run`` ends without warnings about unclosed sessions. Holding
    the generator here keeps the loop from collecting it earlier.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    kept = _per_loop.get(loop)
    if kept is None:
        _abandon_closed_loops()
        kept = _per_loop[loop] = _LoopSessions()
        kept.closer = _closing_with(loop, kept)
        # Run it to its first (and only) yield: the loop's asyncgen hooks
        # register it for shutdown_asyncgens.
        with contextlib.suppress(StopIteration):
            kept.closer.asend(None).send(None)
    session = kept.sessions.get(settings)
    if session is None or session.closed:
        session = kept.sessions[settings] = _new_session(settings)
    return session


async def _closing_with(
    loop: asyncio.AbstractEventLoop, kept: _LoopSessions
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if _per_loop.get(loop) is kept:
            del _per_loop[loop]
        for session in kept.sessions.values():
            with contextlib.suppress(Exception):  # best effort: the loop is ending
                await session.close()
        kept.sessions.clear()


def _abandon_closed_loops() -> None:
    """Forget the sessions of loops that were closed without shutting down their generators."""
    from surefetch._http.aiohttp_support import abandon

    for loop, kept in list(_per_loop.items()):
        if loop.is_closed():
            _per_loop.pop(loop, None)
            for session in kept.sessions.values():
                abandon(session)


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
        # Proxies and netrc credentials are looked up per request by
        # surefetch (`environment_proxy`, `surefetch._http.netrc_auth`):
        # trust_env would cost two worker-thread hops on every request.
        trust_env=False,
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
    for kept in _per_loop.values():
        for session in kept.sessions.values():
            abandon(session)
    _per_loop.clear()


@atexit.register
def _abandon_at_exit() -> None:
    """At exit, mark closed the sessions of loops that never shut down their generators."""
    if _per_loop:
        from surefetch._http.aiohttp_support import abandon

        for kept in list(_per_loop.values()):
            for session in kept.sessions.values():
                abandon(session)
        _per_loop.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
