"""Cost of a successful call through a retry decorator, side by side.

Run by hand (``pip install -e ".[bench]"`` first):

    python benchmarks/retry_overhead.py
    python benchmarks/retry_overhead.py --compare /path/to/other/python   # before/after

Each decorator wraps the same trivial function; the figure is the median over
several timeit repeats of the time per call, minus the undecorated call's.
Target (issue 2): surefetch adds at most 0.5 µs per successful call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable

import surefetch

REPEATS = 9
NUMBER = 200_000
TARGET_US = 0.5


def plain(x: int) -> int:
    return x


def build() -> dict[str, Callable[[int], int]]:
    candidates: dict[str, Callable[[int], int]] = {
        "undecorated": plain,
        "surefetch.retry()": surefetch.retry()(plain),
    }
    try:
        import tenacity

        candidates["tenacity"] = tenacity.retry(stop=tenacity.stop_after_attempt(4))(plain)
    except ImportError:
        pass
    try:
        import backoff

        candidates["backoff"] = backoff.on_exception(backoff.expo, OSError, max_tries=4)(plain)
    except ImportError:
        pass
    try:
        import stamina

        candidates["stamina"] = stamina.retry(on=OSError, attempts=4)(plain)
    except ImportError:
        pass
    return candidates


def per_call_us(fn: Callable[[int], int]) -> list[float]:
    timer = timeit.Timer("fn(1)", globals={"fn": fn})
    return [t / NUMBER * 1e6 for t in timer.repeat(repeat=REPEATS, number=NUMBER)]


def compare(other: str) -> int:
    """surefetch.retry() here and in another interpreter's install, interleaved by process."""
    pythons = {"this checkout": sys.executable, "compared": other}
    samples: dict[str, list[float]] = {name: [] for name in pythons}
    for _ in range(5):
        for name, python in pythons.items():
            done = subprocess.run(
                [python, __file__, "--worker"], capture_output=True, text=True, check=True
            )
            samples[name].extend(json.loads(done.stdout))
    print(f"Python {sys.version.split()[0]}, 5 processes x {REPEATS} repeats x {NUMBER:,} calls")
    print()
    print("| surefetch.retry() | added per call (µs, median) |")
    print("|---|---:|")
    for name, values in samples.items():
        print(f"| {name} | {statistics.median(values):.3f} |")
    return 0


def worker() -> int:
    """Print the added cost per call of each repeat, for `compare`."""
    ours, base = surefetch.retry()(plain), plain
    added = [a - b for a, b in zip(per_call_us(ours), per_call_us(base), strict=True)]
    print(json.dumps(added))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", metavar="PYTHON", help="another interpreter to compare with")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if args.compare:
        return compare(args.compare)
    candidates = build()
    # Interleave the repeats so that drift on a noisy machine hits all alike.
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(3):
        for name, fn in candidates.items():
            samples[name].extend(per_call_us(fn))
    base = statistics.median(samples["undecorated"])
    print(f"Python {sys.version.split()[0]}, {REPEATS * 3} repeats x {NUMBER:,} calls each")
    print()
    print("| decorator | per call (µs, median) | added (µs) | vs surefetch |")
    print("|---|---:|---:|---:|")
    ours = statistics.median(samples["surefetch.retry()"]) - base
    for name, values in samples.items():
        median = statistics.median(values)
        added = median - base
        ratio = "" if name == "undecorated" else f"{added / ours:.1f}x"
        print(f"| {name} | {median:.3f} | {added:.3f} | {ratio} |")
    verdict = "meets" if ours <= TARGET_US else "MISSES"
    print()
    print(f"surefetch adds {ours:.3f} µs per successful call: {verdict} the {TARGET_US} µs target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
