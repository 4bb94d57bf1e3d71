"""Building wheels from sdists: surefetch wheel beside pip wheel and uv, in one run.

    python benchmarks/wheels.py [--runs 5] [--warm-runs 20]

For a small pure sdist (flit_core) and, where a C compiler exists, one with
a C extension (setuptools), times whole processes (medians of interleaved
runs) of:

* ``python -c pass``, the floor;
* cold builds, isolated and not: ``pip wheel --no-deps``, ``uv build
  --wheel`` and ``surefetch wheel`` (each into a fresh cache or output
  directory every run);
* hits: uv's own (``uv pip install --no-deps --target`` of the same sdist a
  second time; no isolation, so that the first needs no index) and
  ``surefetch wheel`` on a warm cache.

Isolated builds take their backend from the index pip is configured with
(``pip config list``); uv gets the same find-links and index URLs.

Targets (issue 12): the warm hit at most 2x ``python -c pass`` and faster
than uv's hit; a cold build within 1.2x of ``pip wheel`` in the same
isolation mode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sdists import has_compiler, make_sdist

Command = Callable[[int], list[str]]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed")
    return found


def pip_index_options() -> list[str]:
    """find-links and index URLs from pip's configuration, as uv options."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    options: list[str] = []
    flags = {"find-links": "--find-links", "extra-index-url": "--extra-index-url"}
    flags["index-url"] = "--index-url"
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        name = key.rpartition(".")[2]
        if name in flags:
            for item in value.strip().strip("'\"").split():
                options += [flags[name], item]
    return options


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    # In a directory of its own: a pyproject.toml that names surefetch (this
    # checkout's) would make every command read its settings.
    subprocess.run(
        command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return time.perf_counter() - started


def tables(
    sdist: Path,
    warm_cache: Path,
    uv_hit: list[str],
    fresh: Callable[[], Path],
    uv_index: list[str],
    uv: str,
) -> tuple[dict[str, Command], dict[str, Command]]:
    """The cold builds and the hits to time for ``sdist``: name -> command of a run."""
    python, pip_cmd, surefetch = sys.executable, [sys.executable, "-m", "pip"], tool("surefetch")
    cold: dict[str, Command] = {
        "pip wheel --no-deps (isolated)": lambda _: [
            *pip_cmd, "wheel", "--no-deps", "-q", "-w", str(fresh()), str(sdist),
        ],
        "uv build --wheel (isolated)": lambda _: [
            uv, "build", "--wheel", "-q", *uv_index, "--cache-dir", str(fresh()),
            "-o", str(fresh()), str(sdist),
        ],
        "surefetch wheel, cold (isolated)": lambda _: [
            surefetch, "wheel", "-q", "--cache-dir", str(fresh()), str(sdist),
        ],
        "pip wheel --no-deps --no-build-isolation": lambda _: [
            *pip_cmd, "wheel", "--no-deps", "--no-build-isolation", "-q",
            "-w", str(fresh()), str(sdist),
        ],
        "uv build --wheel --no-build-isolation": lambda _: [
            uv, "build", "--wheel", "-q", "--no-build-isolation", "--python", python,
            "--cache-dir", str(fresh()), "-o", str(fresh()), str(sdist),
        ],
        "surefetch wheel --no-isolation, cold": lambda _: [
            surefetch, "wheel", "-q", "--no-isolation", "--cache-dir", str(fresh()),
            str(sdist),
        ],
    }  # fmt: skip
    warm: dict[str, Command] = {
        "python -c pass": lambda _: [python, "-c", "pass"],
        "uv pip install --target, uv's cache hit": lambda _: uv_hit,
        "surefetch wheel, warm (cache hit)": lambda _: [
            surefetch, "wheel", "--cache-dir", str(warm_cache), str(sdist),
        ],
    }  # fmt: skip
    return cold, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each cold build")
    parser.add_argument("--warm-runs", type=int, default=20, help="runs of each hit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="surefetch-wheels-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    python = sys.executable
    uv, surefetch = tool("uv"), tool("surefetch")
    uv_index = pip_index_options()
    sdists = {"pure": make_sdist(work, backend="flit", record=work / "record-pure")}
    if has_compiler():
        sdists["C extension"] = make_sdist(
            work, backend="setuptools", record=work / "record-c", extension=True
        )
    else:
        print("no C compiler: the C extension rows are left out")

    counter = iter(range(1_000_000))

    def fresh() -> Path:
        path = work / f"run{next(counter)}"
        path.mkdir()
        return path

    rows: list[tuple[str, str, float]] = []
    for label, sdist in sdists.items():
        warm_cache = fresh()
        subprocess.run(
            [surefetch, "wheel", str(sdist), "--no-isolation", "--cache-dir", str(warm_cache)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        uv_cache, uv_target = fresh(), fresh()
        uv_hit = [
            uv, "pip", "install", "--no-deps", "--no-build-isolation", "--python", python,
            "--target", str(uv_target), "--cache-dir", str(uv_cache), "--reinstall", str(sdist),
        ]  # fmt: skip
        subprocess.run(uv_hit, env=env, check=True, capture_output=True)
        cold, warm = tables(sdist, warm_cache, uv_hit, fresh, uv_index, uv)
        for table, runs in ((cold, args.runs), (warm, args.warm_runs)):
            times: dict[str, list[float]] = {name: [] for name in table}
            for run in range(runs):
                for name, command in table.items():  # interleaved: drift hits all alike
                    times[name].append(timed(command(run), env, work))
            rows += [(label, name, statistics.median(values)) for name, values in times.items()]

    floor = {label: t for label, name, t in rows if name == "python -c pass"}
    print("\n| sdist | command | median | vs `python -c pass` |\n|---|---|---:|---:|")
    for label, name, seconds in rows:
        print(f"| {label} | {name} | {seconds * 1000:.0f} ms | {seconds / floor[label]:.1f}x |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
