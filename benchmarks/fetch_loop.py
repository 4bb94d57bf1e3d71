"""Many small files one call at a time: the per-call cost of surefetch against its peers.

    pip install ".[bench,test]" && python benchmarks/fetch_loop.py [--files 100] [--runs 5]

Issue 15. Serves ``--files`` files of 100 KiB from the chaos server in a
separate process, over plain ``http`` and over ``https`` (a loopback TLS
server whose certificate comes from a throwaway trustme CA, trusted through
``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``), and times, in this one process,
per file:

* ``surefetch.fetch`` called in a loop, into a fresh cache (the default
  transport: ``http.client``), and again with ``SUREFETCH_TRANSPORT=aiohttp``
  (the loop thread);
* ``surefetch.afetch`` awaited in a loop, inside one ``asyncio.run`` (by default
  in a worker thread on ``http.client``, as ``fetch``);
* ``surefetch.fetch_many`` on all the URLs at once;
* ``pooch.retrieve`` called in a loop (no hash);
* ``requests.Session().get`` in a loop, one session, each body streamed to a file;
* ``urllib.request.urlretrieve`` in a loop;
* ``surefetch.fetch`` in a loop with ``SUREFETCH_FSYNC=always``: every entry
  durable before it appears (five fsyncs each), where the default ``lazy``
  mode publishes without fsync and checks an entry once after a restart
  (the others never fsync), so that what durability costs on this disk
  shows in the table.

Every way runs ``--runs`` times, interleaved, with fresh directories; the
table shows the median milliseconds per file and the ratio to pooch and to
requests. The first run of each way also pays its one-time costs in this
process (importing, surefetch's loop thread and TLS context), as a program
that downloads in a loop does once.

Targets: ``surefetch.fetch`` and ``afetch`` in a loop take at most pooch's
time per file and at most 1.5x ``requests.Session``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = 100 << 10


class Server:
    """``benchmarks/_server.py`` in its own process, optionally over TLS."""

    def __init__(self, root: Path, tls: tuple[str, str] | None = None) -> None:
        argv = [sys.executable, str(HERE / "_server.py"), str(root), *(tls or ())]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.base = self.process.stdout.readline().strip()
        if not self.base:
            raise RuntimeError("the chaos server did not start")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def _surefetch_loop(urls: list[str], out: Path) -> None:
    import surefetch

    for url in urls:
        surefetch.fetch(url, cache=out)


def _surefetch_loop_with(variable: str, value: str) -> Callable[[list[str], Path], None]:
    """`surefetch.fetch` in a loop with the setting ``variable`` at ``value``."""

    def loop(urls: list[str], out: Path) -> None:
        os.environ[variable] = value
        try:
            _surefetch_loop(urls, out)
        finally:
            del os.environ[variable]

    return loop


def _afetch_loop(urls: list[str], out: Path) -> None:
    import surefetch

    async def main() -> None:
        for url in urls:
            await surefetch.afetch(url, cache=out)

    asyncio.run(main())


def _fetch_many(urls: list[str], out: Path) -> None:
    import surefetch

    surefetch.fetch_many(urls, cache=out)


def _pooch_loop(urls: list[str], out: Path) -> None:
    import pooch

    pooch.get_logger().setLevel("WARNING")
    for url in urls:
        pooch.retrieve(url, known_hash=None, path=out, progressbar=False)


def _requests_loop(urls: list[str], out: Path) -> None:
    import requests

    with requests.Session() as session:
        for i, url in enumerate(urls):
            with session.get(url, stream=True) as response:
                response.raise_for_status()
                with (out / f"{i}.bin").open("wb") as handle:
                    for chunk in response.iter_content(1 << 20):
                        handle.write(chunk)


def _urllib_loop(urls: list[str], out: Path) -> None:
    import urllib.request

    for i, url in enumerate(urls):
        urllib.request.urlretrieve(url, out / f"{i}.bin")


WAYS: dict[str, Callable[[list[str], Path], None]] = {
    "`surefetch.fetch` in a loop": _surefetch_loop,
    # Every entry fsynced before it appears, as before the lazy mode.
    "`surefetch.fetch` in a loop, fsync=always": _surefetch_loop_with("SUREFETCH_FSYNC", "always"),
    # On the aiohttp transport (its loop thread), as before issue 14.
    "`surefetch.fetch` in a loop, transport=aiohttp": _surefetch_loop_with(
        "SUREFETCH_TRANSPORT", "aiohttp"
    ),
    "`surefetch.afetch` awaited in a loop": _afetch_loop,
    "`surefetch.fetch_many`": _fetch_many,
    "`pooch.retrieve` in a loop": _pooch_loop,
    "`requests.Session().get` in a loop (to a file)": _requests_loop,
    "`urllib.request.urlretrieve` in a loop": _urllib_loop,
}
POOCH = "`pooch.retrieve` in a loop"
REQUESTS = "`requests.Session().get` in a loop (to a file)"


def _available(way: str) -> str | None:
    """Why ``way`` cannot run here, or None."""
    import importlib.util

    for module in ("pooch", "requests"):
        if module in way and importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install '.[bench]')"
    return None


def measure(urls: list[str], runs: int, scratch: Path) -> dict[str, list[float]]:
    """Milliseconds per file of each way, ``runs`` times, interleaved."""
    times: dict[str, list[float]] = {way: [] for way in WAYS if _available(way) is None}
    for run in range(runs):
        for index, way in enumerate(times):
            # A new directory each time, none deleted until the end: deleting
            # the files of the way before just before timing this one would
            # put its journal commit (and, on a disk mounted with discard,
            # its trims) into this way's time. The writes of the way before
            # reach the disk first, for the same reason.
            out = scratch / f"{run}-{index}"
            out.mkdir(parents=True)
            os.sync()
            started = time.perf_counter()
            WAYS[way](urls, out)
            times[way].append((time.perf_counter() - started) * 1000 / len(urls))
            produced = sum(1 for p in out.rglob("*") if p.is_file() and p.stat().st_size == SIZE)
            if produced < len(urls):
                raise RuntimeError(f"{way} left {produced} of {len(urls)} files")
    return times


def _tls_files(where: Path) -> tuple[tuple[str, str], str]:
    """A throwaway CA: the server's (certificate chain, key) and the CA bundle."""
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    chain, key, bundle = where / "chain.pem", where / "key.pem", where / "ca.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(chain))
    issued.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(bundle))
    return (str(chain), str(key)), str(bundle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("SUREFETCH_CACHE_DIR", None)
    os.environ.pop("SUREFETCH_TRANSPORT", None)
    os.environ.pop("SUREFETCH_FSYNC", None)
    rows: list[tuple[str, str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="surefetch-loop-") as temp:
        root = Path(temp) / "files"
        root.mkdir()
        for i in range(args.files):
            (root / f"f{i:04}.bin").write_bytes(os.urandom(SIZE))
        tls, bundle = _tls_files(Path(temp))
        for scheme in ("http", "https"):
            # One bundle for every client: each loads it the way it does in practice.
            os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = bundle
            server = Server(root, tls if scheme == "https" else None)
            try:
                urls = [f"{server.base}/f{i:04}.bin" for i in range(args.files)]
                times = measure(urls, args.runs, Path(temp) / scheme)
            finally:
                server.close()
            medians = {way: statistics.median(t) for way, t in times.items()}
            for way, ms in medians.items():
                rows.append(
                    (
                        scheme,
                        way,
                        ms,
                        ms / medians[POOCH] if POOCH in medians else float("nan"),
                        ms / medians[REQUESTS] if REQUESTS in medians else float("nan"),
                    )
                )
    print(f"{args.files} files of 100 KiB, median of {args.runs} interleaved runs, per file:\n")
    print("| scheme | how | ms per file | x pooch | x requests.Session |")
    print("|---|---|---:|---:|---:|")
    for scheme, way, ms, vs_pooch, vs_requests in rows:
        print(f"| {scheme} | {way} | {ms:.2f} | {vs_pooch:.2f} | {vs_requests:.2f} |")
    for way in WAYS:
        why = _available(way)
        if why is not None:
            print(f"\n{way}: not run, {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
