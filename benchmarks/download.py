"""Download throughput on loopback, side by side in one run.

    pip install ".[bench]" && python benchmarks/download.py [--size-mib 1024] [--runs 3]

Compares, each as a whole process and the median of several runs:

* a 1 GiB download with sha256 verification into a fresh cache by surefetch,
  through the CLI and through the library (``surefetch.fetch``), against curl
  writing to a file (no hashing) and pooch (``pooch.retrieve`` with a known hash);
* the same surefetch downloads with a connection reset every 128 MiB, resumed
  with Range (the policy allows the 7 retries this takes);
* 500 files of 100 KiB: ``surefetch.fetch_many`` against pooch fetching them
  one by one.

Targets (issue 4): fault-free surefetch at least 0.8x curl's throughput; with
resets, at most 1.2x the fault-free time. The server is the chaos server in a
separate process, serving from disk.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1 << 20


class Server:
    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_server.py"), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base = self.process.stdout.readline().strip()

    def command(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def make_file(path: Path, size: int) -> str:
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(size // MIB):
            chunk = block[i % 97 :] + block[: i % 97]  # not one repeated block
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def timed(command: list[str], scratch: Path) -> float:
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    # Each run starts with no dirty pages left by the one before: their
    # writeback would otherwise land in whichever command runs next.
    os.sync()
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=scratch)
    elapsed = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    return elapsed


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=500)
    args = parser.parse_args()
    size = args.size_mib * MIB
    reset_every = 128 * MIB
    resets = max(0, size // reset_every - 1)

    work = Path(tempfile.mkdtemp(prefix="surefetch-bench-"))
    root = work / "served"
    (root / "small").mkdir(parents=True)
    scratch = work / "scratch"
    print(f"making a {args.size_mib} MiB file and {args.small_files} files of 100 KiB ...")
    sha = make_file(root / "big.bin", size)
    for i in range(args.small_files):
        (root / "small" / f"f{i}.bin").write_bytes(os.urandom(100 * 1024))
    server = Server(root)
    url = f"{server.base}/big.bin"
    py = sys.executable
    cache = str(scratch / "cache")
    library = (
        "import surefetch, sys; "
        "surefetch.fetch(sys.argv[1], sha256=sys.argv[2], cache=sys.argv[3], "
        "retries=int(sys.argv[4]))"
    )
    pooch_one = (
        "import pooch, sys; "
        "pooch.retrieve(sys.argv[1], known_hash='sha256:' + sys.argv[2], path=sys.argv[3], "
        "progressbar=False)"
    )
    small_urls = [f"{server.base}/small/f{i}.bin" for i in range(args.small_files)]
    many_surefetch = (
        "import surefetch, sys; "
        "urls = sys.stdin.read().split(); "
        "surefetch.fetch_many(urls, cache=sys.argv[1], concurrency=16)"
    )
    many_pooch = (
        "import pooch, sys; "
        "urls = sys.stdin.read().split(); "
        "[pooch.retrieve(u, known_hash=None, path=sys.argv[1], progressbar=False) for u in urls]"
    )

    def with_resets(command: list[str]) -> Callable[[], float]:
        def measure() -> float:
            server.command(f"reset /big.bin {reset_every} {resets}")
            return timed(command, scratch)

        return measure

    def plain(command: list[str]) -> Callable[[], float]:
        def measure() -> float:
            server.command("reset /big.bin 0 0")
            return timed(command, scratch)

        return measure

    def many(code: str) -> Callable[[], float]:
        def measure() -> float:
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            os.sync()
            started = time.perf_counter()
            subprocess.run(
                [py, "-c", code, cache], input="\n".join(small_urls), text=True, check=True
            )
            elapsed = time.perf_counter() - started
            shutil.rmtree(scratch, ignore_errors=True)
            return elapsed

        return measure

    cli = [py, "-m", "surefetch", "fetch", url, "--sha256", sha, "--cache-dir", cache, "-q"]
    lib = [py, "-c", library, url, sha, cache]
    rows: list[tuple[str, float, list[float]]] = []
    cases: list[tuple[str, Callable[[], float]]] = [
        ("curl -o FILE (no hash)", plain(["curl", "-sS", "-o", "out.bin", url])),
        (
            "curl -o FILE, then sha256sum FILE",
            plain(["sh", "-c", f"curl -sS -o out.bin '{url}' && sha256sum out.bin"]),
        ),
        ("surefetch CLI, sha256", plain([*cli, "--retries", "3"])),
        ("surefetch library, sha256", plain([*lib, "3"])),
        ("pooch.retrieve, sha256", plain([py, "-c", pooch_one, url, sha, cache])),
        (f"surefetch CLI, reset every 128 MiB ({resets}x)", with_resets([*cli, "--retries", "10"])),
        (f"surefetch library, reset every 128 MiB ({resets}x)", with_resets([*lib, "10"])),
    ]
    if shutil.which("curl") is None:
        cases = cases[2:]
    for name, measure in cases:
        median, samples = median_of(args.runs, measure)
        rows.append((name, median, samples))
        print(f"  {name}: {median:.2f}s", flush=True)
    many_rows = []
    for name, code in (
        ("surefetch.fetch_many (16 at once)", many_surefetch),
        ("pooch.retrieve one by one", many_pooch),
    ):
        median, samples = median_of(args.runs, many(code))
        many_rows.append((name, median, samples))
        print(f"  {name}: {median:.2f}s", flush=True)
    server.close()
    shutil.rmtree(work, ignore_errors=True)

    by_name = {name: median for name, median, _ in rows}
    curl = by_name.get("curl -o FILE (no hash)")
    print()
    print(f"{args.size_mib} MiB over loopback, median of {args.runs} runs (whole process)")
    print()
    print("| download | wall (s) | MiB/s | throughput vs curl |")
    print("|---|---:|---:|---:|")
    for name, median, _ in rows:
        ratio = f"{curl / median:.2f}x" if curl else "n/a"
        print(f"| {name} | {median:.2f} | {args.size_mib / median:.0f} | {ratio} |")
    print()
    for kind in ("CLI", "library"):
        clean = by_name[f"surefetch {kind}, sha256"]
        faulty = by_name[f"surefetch {kind}, reset every 128 MiB ({resets}x)"]
        ratio = faulty / clean
        print(f"surefetch {kind}: with resets {ratio:.2f}x the fault-free time (target <= 1.2x)")
    print()
    print(f"| {args.small_files} files of 100 KiB | wall (s) | vs pooch |")
    print("|---|---:|---:|")
    pooch_time = many_rows[1][1]
    for name, median, _ in many_rows:
        print(f"| {name} | {median:.2f} | {pooch_time / median:.1f}x faster |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
