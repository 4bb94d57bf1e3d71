"""A download on a cache miss, side by side with curl in one run (issue 14).

    pip install ".[bench]" && python benchmarks/near_curl.py [--size-mib 512] [--runs 3]

Each row is a whole process, run ``--runs`` times interleaved with the other
rows (medians shown), against the chaos server in a separate process over
loopback, with a fresh cache (or output file) every run:

* ``curl -s -o FILE URL``, the same followed by ``sha256sum FILE``, and
  followed by ``sync FILE`` instead (an fsync of the file: durable, as a
  cache entry is);
* ``surefetch fetch URL --sha256 HEX`` (the command line), on the default
  transport (``http.client``) and with ``SUREFETCH_TRANSPORT=aiohttp``;
* ``surefetch.fetch(URL, sha256=HEX)`` in ``python -c``, likewise;
* ``python -c pass``, the floor of any Python tool.

Two files: one of 100 KB, whose wall time is the row's fixed cost (process
start, imports, connecting, the cache's commit), and a large one
(``--size-mib``, 512 MiB by default). The body rate is the large file's size
over the difference of the two wall times, so the fixed cost and the rate
are separate columns. Peak RSS is the large run's (``wait4``), the process
and any children it waited for. Under its default ``fsync`` mode, ``lazy``,
surefetch publishes the entry without fsync on Linux (and checks it once
after a restart, see the cache guide's Durability); the ``fsync=always`` row
makes the entry durable before it appears (fsync of the file, its metadata
and three directories), to compare with ``curl -o FILE && sync FILE``.

Python rows start from .pyc files, as an installed package does (a warm-up
run writes them even where ``PYTHONDONTWRITEBYTECODE`` is set).

Targets: a command-line miss of the small file at most 6x ``python -c pass``;
the large file with sha256 at most 1.5x ``curl -o FILE``, command line and
library, with peak RSS at most 64 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
SMALL = 100_000

sys.path.insert(0, str(HERE))
from download import Server  # noqa: E402  (a sibling script, not a package)


@dataclass(frozen=True)
class Way:
    """One row: how to build its command for (url, sha256, output directory)."""

    name: str
    command: Callable[[str, str, Path], list[str]]
    transport: str | None = None
    only_small: bool = False
    fsync: str | None = None


def _surefetch_cli() -> list[str]:
    found = shutil.which("surefetch", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "surefetch"]


_LIBRARY = (
    "import sys, surefetch\nsurefetch.fetch(sys.argv[1], sha256=sys.argv[2], cache=sys.argv[3])\n"
)


def ways() -> list[Way]:
    cli = _surefetch_cli()
    return [
        Way(
            "python -c pass (the floor)", lambda u, h, o: [sys.executable, "-c", "pass"], None, True
        ),
        Way("curl -o FILE (no hash)", lambda u, h, o: ["curl", "-s", "-o", str(o / "f"), u]),
        Way(
            "curl -o FILE && sha256sum FILE",
            lambda u, h, o: [
                "sh",
                "-c",
                'curl -s -o "$1/f" "$2" && sha256sum "$1/f" >/dev/null',
                "sh",
                str(o),
                u,
            ],
        ),
        Way(
            # What the cache also guarantees: the bytes on disk (coreutils' sync
            # FILE fsyncs that one file). No hash: this machine's sha256sum is
            # far slower than OpenSSL's, and would hide what durability costs.
            "curl -o FILE && sync FILE (durable, no hash)",
            lambda u, h, o: ["sh", "-c", 'curl -s -o "$1/f" "$2" && sync "$1/f"', "sh", str(o), u],
        ),
        Way(
            "surefetch fetch URL --sha256 (CLI, http.client)",
            lambda u, h, o: [*cli, "fetch", u, "--sha256", h, "-q", "--cache-dir", str(o)],
            "stdlib",
        ),
        Way(
            "surefetch fetch URL --sha256 (CLI, http.client, fsync=always)",
            lambda u, h, o: [*cli, "fetch", u, "--sha256", h, "-q", "--cache-dir", str(o)],
            "stdlib",
            fsync="always",
        ),
        Way(
            "surefetch fetch URL --sha256 (CLI, aiohttp)",
            lambda u, h, o: [*cli, "fetch", u, "--sha256", h, "-q", "--cache-dir", str(o)],
            "aiohttp",
        ),
        Way(
            "surefetch.fetch(URL, sha256=) (library, http.client)",
            lambda u, h, o: [sys.executable, "-c", _LIBRARY, u, h, str(o)],
            "stdlib",
        ),
        Way(
            "surefetch.fetch(URL, sha256=) (library, aiohttp)",
            lambda u, h, o: [sys.executable, "-c", _LIBRARY, u, h, str(o)],
            "aiohttp",
        ),
    ]


def run(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one whole process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed with exit code {process.returncode}")
    return wall, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("curl is not installed: nothing to compare with")
        return 1
    # An installed package starts from its .pyc files: so do these runs (the
    # warm-up run below writes them), whatever the caller's environment says.
    skipped = ("PYTHONDONTWRITEBYTECODE",)
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SUREFETCH_") and not k.lower().endswith("_proxy") and k not in skipped
    }
    all_ways = ways()
    with tempfile.TemporaryDirectory(prefix="surefetch-near-curl-") as temp:
        root = Path(temp) / "files"
        root.mkdir()
        small, large = root / "small.bin", root / "large.bin"
        small.write_bytes(os.urandom(SMALL))
        with large.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(MIB))
        hashes = {
            "small": hashlib.sha256(small.read_bytes()).hexdigest(),
            "large": _sha256_of(large),
        }
        server = Server(root)
        walls: dict[tuple[str, str], list[float]] = {}
        rss: dict[str, list[int]] = {}
        try:
            for way in all_ways:  # warm-up, not timed: .pyc files, the page cache
                out = Path(temp) / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                env = dict(base_env, SUREFETCH_TRANSPORT=way.transport or "auto")
                if way.fsync is not None:
                    env["SUREFETCH_FSYNC"] = way.fsync
                run(way.command(f"{server.base}/small.bin", hashes["small"], out), env)
            for _ in range(args.runs):
                for size in ("small", "large"):
                    url = f"{server.base}/{size}.bin"
                    for way in all_ways:
                        if way.only_small and size == "large":
                            continue
                        out = Path(temp) / "out"
                        shutil.rmtree(out, ignore_errors=True)
                        out.mkdir()
                        env = dict(base_env)
                        if way.transport is not None:
                            env["SUREFETCH_TRANSPORT"] = way.transport
                        if way.fsync is not None:
                            env["SUREFETCH_FSYNC"] = way.fsync
                        wall, peak = run(way.command(url, hashes[size], out), env)
                        walls.setdefault((way.name, size), []).append(wall)
                        if size == "large":
                            rss.setdefault(way.name, []).append(peak)
        finally:
            server.close()
    median = {key: statistics.median(values) for key, values in walls.items()}
    floor = median[(all_ways[0].name, "small")]
    curl_small = median[(all_ways[1].name, "small")]
    curl_large = median[(all_ways[1].name, "large")]
    print(
        f"100 KB and {args.size_mib} MiB, loopback, fresh cache each run, "
        f"median of {args.runs} interleaved runs:\n"
    )
    print(
        f"| how | 100 KB wall = fixed cost | x python -c pass | x curl | {args.size_mib} MiB wall "
        "| x curl -o | body rate (MiB/s) | peak RSS (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for way in all_ways:
        fixed = median[(way.name, "small")]
        cells = [
            way.name,
            f"{fixed * 1000:.0f} ms",
            f"{fixed / floor:.1f}",
            f"{fixed / curl_small:.1f}",
        ]
        if way.only_small:
            cells += ["", "", "", ""]
        else:
            big = median[(way.name, "large")]
            rate = args.size_mib / (big - fixed) if big > fixed else float("nan")
            cells += [
                f"{big:.2f} s",
                f"{big / curl_large:.2f}",
                f"{rate:.0f}",
                f"{max(rss[way.name]) / MIB:.0f}",
            ]
        print("| " + " | ".join(cells) + " |")
    return 0


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(MIB):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
