"""Running the async core from synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion and return its result.

    In a thread with no running event loop, the coroutine runs on a new loop
    in this thread (so a synchronous retry loop around the call shares its
    budget with the loops inside). Where an event loop is already running in
    this thread (sync code called from async code), it runs on a new loop in
    a worker thread, with a copy of the current context, and this thread
    blocks until it is done.
    """
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    # Outside the except block, so errors of the coroutine do not carry the
    # RuntimeError as their __context__.
    if not loop_running:
        return asyncio.run(coroutine)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="surefetch") as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()
