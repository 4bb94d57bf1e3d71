"""`surefetch demo`: the main job against scripted faults, with nothing to set up.

It builds a sample archive, serves it from the chaos server on loopback in
this process, and fetches and extracts it through a reset mid-body, a 503
and a 429 with ``Retry-After: 1``, narrating each retry, the resume, the
wait, the verified hash and the cached tree; then it fetches again to show
the cache hit.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from surefetch._cli.exit_codes import EXIT_OK
from surefetch._cli.help import epilog
from surefetch._cli.output import run_reporting
from surefetch._retry.events import RetryEvent, add_retry_hook
from surefetch._url import Redactor

SAMPLE_NAME = "sample-dataset.tar.gz"
_FILES = 120
_FILE_SIZE = 64 * 1024


def add_parser(commands: Any) -> None:
    """Register ``surefetch demo`` on ``commands`` (argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="fetch and extract a sample archive from a local server that misbehaves",
        description=(
            "Serve a generated sample archive from a local chaos server and fetch it "
            "through a connection reset, a 503 and a 429 with Retry-After, then again "
            "from the cache. Needs no network beyond loopback."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(
            examples=["surefetch demo", "surefetch demo --faults none --cache-dir ./demo-cache"],
            variables=["SUREFETCH_NO_RETRY_DELAY"],
        ),
    )
    parser.add_argument(
        "--faults",
        choices=("default", "none"),
        default="default",
        help="'none' runs the demo without faults",
    )
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="keep the demo's cache here (default: a temporary one)"
    )
    parser.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """Handle ``surefetch demo``."""
    cache_dir = None if args.cache_dir is None else Path(args.cache_dir)
    return run_reporting(
        lambda: run_demo(faults=args.faults == "default", cache_dir=cache_dir, out=sys.stdout),
        redactor=Redactor(),
        verbose=False,
    )


def build_sample(*, seed: int = 7) -> bytes:
    """A .tar.gz of a small, incompressible data set (about 7.5 MiB)."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for i in range(_FILES):
            data = rng.randbytes(_FILE_SIZE)
            info = tarfile.TarInfo(f"sample-dataset/part-{i // 40}/record-{i:03d}.bin")
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
        readme = b"A sample data set served by `surefetch demo`.\n"
        info = tarfile.TarInfo("sample-dataset/README.txt")
        info.size = len(readme)
        info.mtime = 1_700_000_000
        archive.addfile(info, io.BytesIO(readme))
    return buffer.getvalue()


class _Narrator(logging.Handler):
    """Shows the library's own log lines (retries, resumes) as the demo's story."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.INFO)
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        mark = "->" if message.startswith("Resuming") else "  "
        print(f"  {mark} {message}", file=self._out, flush=True)


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def run_demo(*, faults: bool = True, cache_dir: Path | None = None, out: TextIO) -> int:
    """Run the demo, printing its story to ``out``; returns the exit code.

    Example:
        >>> import io
        >>> run_demo(faults=False, out=io.StringIO())  # doctest: +SKIP
        0
    """
    from surefetch._fetch.async_api import afetch_result
    from surefetch._retry.policy import RetryPolicy
    from surefetch._run_sync import run_sync
    from surefetch.testing import ChaosServer, Fault

    data = build_sample()
    sha256 = hashlib.sha256(data).hexdigest()
    scratch = None if cache_dir is not None else Path(tempfile.mkdtemp(prefix="surefetch-demo-"))
    cache = cache_dir if cache_dir is not None else scratch
    assert cache is not None
    logger = logging.getLogger("surefetch")
    narrator = _Narrator(out)
    previous_level = logger.level
    logger.addHandler(narrator)
    logger.setLevel(logging.INFO)
    waits: list[RetryEvent] = []
    unsubscribe = add_retry_hook(waits.append)
    # Short waits keep the demo to a few seconds; a real policy waits longer.
    policy = RetryPolicy(retries=5, wait_min=0.5, wait_max=2.0)
    try:
        with ChaosServer(files={f"/{SAMPLE_NAME}": data}) as server:
            url = server.url(f"/{SAMPLE_NAME}")
            print(f"Serving {SAMPLE_NAME} ({_mib(len(data))}) at {url}", file=out)
            if faults:
                cut = len(data) * 2 // 5
                server.script(
                    f"/{SAMPLE_NAME}",
                    [
                        Fault.reset_after(cut),
                        Fault.status(503),
                        Fault.retry_after(1, status=429),
                    ],
                )
                print("The server will misbehave on purpose:", file=out)
                print(f"  request 1: connection reset after {_mib(cut)}", file=out)
                print("  request 2: 503 Service Unavailable", file=out)
                print("  request 3: 429 Too Many Requests with Retry-After: 1", file=out)
            print(f"\nFetching and extracting it (sha256 {sha256[:16]}...):", file=out)
            started = time.monotonic()
            result = run_sync(
                afetch_result(url, sha256=sha256, cache=cache, policy=policy, extract=True)
            )
            elapsed = time.monotonic() - started
            print(f"  ok sha256 verified: {result.sha256}", file=out)
            print(
                f"  ok {result.extra.get('files')} files extracted into the cache:\n"
                f"     {result.path}",
                file=out,
            )
            requests, retries = server.request_count(), result.retries
            print(
                f"  {_count(requests, 'request')}, {_count(retries, 'retry', 'retries')}, "
                f"{_mib(result.resumed_bytes)} resumed rather than downloaded again, "
                f"{elapsed:.1f}s",
                file=out,
            )
            print("\nFetching it again:", file=out)
            before = server.request_count()
            again = run_sync(
                afetch_result(url, sha256=sha256, cache=cache, policy=policy, extract=True)
            )
            assert again.from_cache and server.request_count() == before
            print(
                f"  ok cache hit, no request, {again.elapsed_s * 1000:.1f} ms:\n     {again.path}",
                file=out,
            )
    finally:
        unsubscribe()
        logger.removeHandler(narrator)
        logger.setLevel(previous_level)
        if scratch is not None:
            _remove_scratch(scratch)
    if scratch is not None:
        print("\n(The demo used a temporary cache, now removed; see --cache-dir.)", file=out)
    return EXIT_OK


def _remove_scratch(scratch: str | Path) -> None:
    """Take the demo's temporary cache away (iteratively: see `surefetch._fs.tree`)."""
    from surefetch._errors import RetriesExhausted
    from surefetch._fs.ops import remove_tree

    try:
        remove_tree(scratch)
    except (OSError, RetriesExhausted) as error:
        logging.getLogger("surefetch").warning("Could not remove %s: %s", scratch, error)
