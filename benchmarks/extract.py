"""Fetch + extract of a .tar.gz on loopback, side by side with curl | tar.

    pip install ".[bench]" && python benchmarks/extract.py [--size-mib 200] [--runs 3]

Builds a .tar.gz of about ``--size-mib`` MiB holding ``--files`` files, serves
it with the chaos server in a separate process, and times, as whole
processes, the median of several runs of:

* ``curl -s URL | tar xz -C DIR``;
* ``surefetch fetch URL --extract DIR`` (download and extract while
  streaming; the tree goes to DIR, the archive file to the cache);
* ``surefetch.fetch(URL, extract=True)`` from Python (the tree into the cache).

Target (issue 5): surefetch at most 1.5x the curl | tar wall time.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_archive(path: Path, *, size: int, files: int) -> None:
    per_file = size // files
    block = os.urandom(per_file + 4096)
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for i in range(files):
            data = block[i % 4096 : i % 4096 + per_file]
            info = tarfile.TarInfo(f"dataset/part{i // 500:02d}/file{i:05d}.bin")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="surefetch-extract-bench-"))
    served = work / "served"
    served.mkdir()
    print(f"building a .tar.gz of {args.files} files, {args.size_mib} MiB ...", flush=True)
    build_archive(served / "dataset.tar.gz", size=args.size_mib << 20, files=args.files)
    archive_mib = (served / "dataset.tar.gz").stat().st_size / (1 << 20)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), str(served)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    url = server.stdout.readline().strip() + "/dataset.tar.gz"
    scratch = work / "scratch"

    def timed(command: list[str] | str) -> float:
        shutil.rmtree(scratch, ignore_errors=True)
        (scratch / "out").mkdir(parents=True)
        # Each run starts with no dirty pages left by the one before: their
        # writeback would otherwise land in whichever command runs next.
        os.sync()
        started = time.perf_counter()
        subprocess.run(
            command,
            shell=isinstance(command, str),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=scratch,
        )
        elapsed = time.perf_counter() - started
        shutil.rmtree(scratch, ignore_errors=True)
        return elapsed

    py = sys.executable
    cache = str(scratch / "cache")
    library = "import surefetch, sys; surefetch.fetch(sys.argv[1], extract=True, cache=sys.argv[2])"
    cases: list[tuple[str, Callable[[], float]]] = [
        ("curl -s URL | tar xz", lambda: timed(f"curl -sS '{url}' | tar xz -C out")),
        (
            "surefetch fetch --extract DIR",
            lambda: timed(
                [py, "-m", "surefetch", "fetch", url, "--extract", "out", "--cache-dir", cache]
            ),
        ),
        ("surefetch.fetch(extract=True)", lambda: timed([py, "-c", library, url, cache])),
    ]
    # Interleaved, so that drift on a noisy machine hits every case alike.
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(args.runs):
        for name, measure in cases:
            samples[name].append(measure())
    server.stdin.close()
    server.wait(timeout=10)
    shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(samples["curl -s URL | tar xz"])
    print()
    print(
        f"{archive_mib:.0f} MiB .tar.gz, {args.files} files, loopback, "
        f"median of {args.runs} runs (whole process)"
    )
    print()
    print("| fetch + extract | wall (s) | vs curl pipe tar |")
    print("|---|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {median / base:.2f}x |")
    print()
    print("target: surefetch at most 1.5x the curl | tar wall time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
