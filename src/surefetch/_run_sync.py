"""Running the async core from synchronous code, on one event loop thread per process.

A new event loop per call costs a loop, its default executor's threads and,
above all, the HTTP session and its kept-alive connections. So the
synchronous API runs every coroutine on one loop, in one daemon thread that
is started on the first call that needs it. Things that should live as
long as that loop (the HTTP session) register a closer with
`at_loop_shutdown`; at interpreter exit the loop cancels what still runs,
awaits the closers and stops. After ``fork`` the child forgets the parent's
loop (its thread does not exist there, and its sockets are the parent's) and
starts its own on first use.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_SHUTDOWN_SECONDS = 10.0


class _LoopThread:
    """An event loop running forever in a daemon thread, with its own executor."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # Owned here so that exit can shut it down from the main thread.
        self.executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="surefetch-io")
        self.loop.set_default_executor(self.executor)
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.thread = threading.Thread(target=self._run, name="surefetch-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _wind_down(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):  # best effort: nobody is left to tell
                await closer()
        # Older aiohttp closes a connection's transport with call_soon: give
        # those callbacks their turn, or the sockets are left for the
        # garbage collector to find (a ResourceWarning at exit).
        for _ in range(3):
            await asyncio.sleep(0)
        await self.loop.shutdown_asyncgens()

    def shutdown(self) -> None:
        """Cancel what runs, await the closers, stop the loop, close it (from another thread)."""
        winding = asyncio.run_coroutine_threadsafe(self._wind_down(), self.loop)
        with contextlib.suppress(Exception):  # a loop that cannot wind down is still stopped
            winding.result(_SHUTDOWN_SECONDS)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(_SHUTDOWN_SECONDS)
        self.executor.shutdown(wait=True)
        if not self.thread.is_alive():
            self.loop.close()


_lock = threading.Lock()
_current: _LoopThread | None = None
_exiting = False
# Loops inherited through fork: never used or closed in the child (their sockets
# and selector are shared with the parent), only kept from being collected.
_inherited: list[_LoopThread] = []


def _loop_thread() -> _LoopThread | None:
    """The process's loop thread, started on first use; None once the interpreter exits."""
    global _current
    current = _current
    if current is not None:
        return current
    with _lock:
        if _current is None and not _exiting:
            _current = _LoopThread()
        return _current


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on surefetch's loop thread and return its result.

    The caller's thread waits; it may run an event loop of its own (sync
    code called from async code). The coroutine runs in a copy of the
    caller's context, so a synchronous retry loop around the call shares its
    budget with the loops inside. Interrupted (Ctrl-C), the coroutine is
    cancelled and its clean-up awaited before the interruption propagates.
    Called from the loop thread itself (a progress callback that fetches),
    or while the interpreter exits, it runs on a new loop in a worker thread
    instead.
    """
    owner = _loop_thread()
    if owner is None or threading.current_thread() is owner.thread:
        return _run_in_worker(coroutine)
    context = contextvars.copy_context()
    finished = threading.Event()
    started: list[asyncio.Task[T]] = []

    def start() -> None:
        task = context.run(owner.loop.create_task, coroutine)
        task.add_done_callback(lambda _: finished.set())
        started.append(task)

    def cancel() -> None:
        started[0].cancel()

    owner.loop.call_soon_threadsafe(start)
    try:
        finished.wait()
    except BaseException:
        owner.loop.call_soon_threadsafe(cancel)
        finished.wait(_SHUTDOWN_SECONDS)
        raise
    return started[0].result()


def at_loop_shutdown(closer: Callable[[], Awaitable[None]]) -> None:
    """Await ``closer()`` on the running loop thread when it shuts down (at exit).

    Call it from a coroutine that runs on that loop (`on_loop_thread`).
    """
    owner = _current
    if owner is None or asyncio.get_running_loop() is not owner.loop:
        raise RuntimeError("at_loop_shutdown() is for coroutines on surefetch's loop thread")
    owner.closers.append(closer)


def on_loop_thread() -> bool:
    """Whether the running event loop is surefetch's own loop thread's."""
    owner = _current
    if owner is None:
        return False
    try:
        return asyncio.get_running_loop() is owner.loop
    except RuntimeError:
        return False


def _run_in_worker(coroutine: Coroutine[Any, Any, T]) -> T:
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="surefetch") as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()


@atexit.register
def _shutdown_at_exit() -> None:
    global _current, _exiting
    with _lock:
        current, _current = _current, None
        _exiting = True
    if current is not None:
        current.shutdown()


def _forget_after_fork() -> None:
    global _current, _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _current is not None:
        _inherited.append(_current)
        _current = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
