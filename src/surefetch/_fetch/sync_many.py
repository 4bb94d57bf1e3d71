"""`fetch_many` of plain files on the standard-library transport: threads on kept connections.

Each of ``concurrency`` threads takes the next request and runs the same
pipeline as a single synchronous `fetch` (`fetch_resolved_sync`: lookup,
the key's lock, lookup again, download with retries, resume and mirrors,
verify, commit), over one batch-wide pool of kept-alive connections, one per
thread. Threads overlap the waits of a file (for the server, and under
``fsync=always`` for the five fsyncs of its commit, which the filesystem's
journal then commits together), the GIL being released in each of them.
The asynchronous core on aiohttp ran every commit through one event loop
and its executor instead.

The behaviour is that of `afetch_many` on aiohttp: identical requests share
one fetch, every request runs to its end and reports its own outcome, each
runs in a copy of the caller's context (the retry scope an asynchronous
caller opened is shared, as asyncio shares it with the tasks of a
``gather``), and the per-host retry budget paces retries across threads.
"""

from __future__ import annotations

import contextvars
import threading

from surefetch._fetch.many import unique
from surefetch._fetch.options import Options
from surefetch._fetch.request import FetchRequest, FetchResult, resolve
from surefetch._fetch.sync_file import fetch_resolved_sync
from surefetch._http.stdlib_pool import Pool


def fetch_many_sync(
    items: list[FetchRequest], *, concurrency: int, options: Options
) -> dict[FetchRequest, FetchResult | BaseException]:
    """The outcome of each distinct request of ``items``: its result, or what it raised.

    The caller's thread only waits. Interrupted (Ctrl-C), it stops handing
    out requests and raises at once; the downloads already running finish
    in their (daemon) threads, which a thread cannot be made to stop
    sooner, and a download cut short by the interpreter's exit is resumed
    by the next fetch, as after a kill.
    """
    batch = _Batch(unique(items), options, Pool(keep_per_key=concurrency))
    batch.run(min(concurrency, len(batch.todo)))
    return batch.outcomes


class _Batch:
    """The requests still to hand out, the outcomes so far, and the threads' count."""

    def __init__(self, todo: list[FetchRequest], options: Options, connections: Pool) -> None:
        self.todo = todo
        self.options = options
        self.connections = connections
        self.outcomes: dict[FetchRequest, FetchResult | BaseException] = {}
        self.context = contextvars.copy_context()
        self._next = 0
        self._running = 0
        self._stopped = False
        self._lock = threading.Lock()
        self._done = threading.Event()

    def run(self, threads: int) -> None:
        self._running = threads
        for number in range(threads):
            name = f"surefetch-many-{number}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        try:
            self._done.wait()
        except BaseException:
            with self._lock:
                self._stopped = True
            raise

    def _take(self) -> FetchRequest | None:
        with self._lock:
            if self._stopped or self._next == len(self.todo):
                return None
            self._next += 1
            return self.todo[self._next - 1]

    def _work(self) -> None:
        try:
            while (item := self._take()) is not None:
                # A copy per request, as asyncio gives each task of a gather.
                outcome = self.context.copy().run(self._fetch, item)
                with self._lock:
                    self.outcomes[item] = outcome
        finally:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self.connections.close()
                self._done.set()

    def _fetch(self, item: FetchRequest) -> FetchResult | BaseException:
        try:
            return fetch_resolved_sync(resolve(item), self.options, connections=self.connections)
        except BaseException as error:  # each request reports its own outcome
            return error
