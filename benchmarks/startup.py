"""Start-up time of the command line, side by side with ``python -c pass``.

    pip install . && python benchmarks/startup.py [--runs 30]

Times whole processes (the median of interleaved runs) of:

* ``python -c pass``, the floor;
* ``surefetch --version``;
* ``surefetch fetch URL`` on a cache hit (the entry is filled first from a
  chaos server, which is then stopped: a hit must not touch the network),
  also with ``--json``, with ``-o FILE``, in a project whose pyproject.toml
  depends on surefetch and in one with a ``[tool.surefetch]`` table;
* freshness (issue 13), against a small server that sends
  ``Cache-Control: max-age=3600`` and an ``ETag`` for a 1 KB file: a hit of
  that fresh URL-keyed entry, a revalidation answered with ``304``
  (``--max-age 0`` makes the entry stale on every run), and a small-file
  miss (``--no-cache``) from the same server, which the 304 is held to;
* ``python -c "import surefetch"``, for reference.

Targets (issue 6): a cache hit at most 2x ``python -c pass``; ``--version`` at
most 1.5x. Issue 13: a 304 revalidation at most the time of a small-file
miss. Also checks that a cache hit imports neither the HTTP stack
(aiohttp) nor the progress bar (rich).
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SMALL = os.urandom(1024)
ETAG = '"small-v1"'


class _FreshHandler(http.server.BaseHTTPRequestHandler):
    """A 1 KB file, fresh for an hour, with an ETag that a conditional GET matches."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.send_header("Cache-Control", "max-age=3600")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", ETAG)
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(SMALL)))
        self.end_headers()
        self.wfile.write(SMALL)

    def log_message(self, format: str, *args: object) -> None:
        pass


def console_script(python: str = sys.executable) -> list[str]:
    """The ``surefetch`` command installed beside ``python``, as a user would run it."""
    found = shutil.which("surefetch", path=str(Path(python).parent))
    return [found] if found else [python, "-m", "surefetch"]


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--compare",
        metavar="PYTHON",
        help="also time the surefetch installed for this interpreter (say, the last release), "
        "interleaved with this one: a before/after table from one run",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="surefetch-startup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env["SUREFETCH_CACHE_DIR"] = str(work / "cache")
    surefetch = console_script()

    from surefetch.testing import ChaosServer

    with ChaosServer(files={"/tool-1.0.tar.gz": os.urandom(100_000)}) as server:
        url = server.url("/tool-1.0.tar.gz")
        subprocess.run([*surefetch, "fetch", url, "-q"], env=env, check=True)
    # The server is gone: the hit below cannot be a download.

    probe = (
        "import sys; sys.argv = ['surefetch', 'fetch', sys.argv[1]]; "
        "from surefetch._cli.main import main; code = main(); "
        "heavy = sorted(m for m in ('aiohttp', 'rich', 'asyncio') if m in sys.modules); "
        "print('imported on a cache hit:', heavy or 'none', file=sys.stderr)"
    )
    subprocess.run([sys.executable, "-c", probe, url], env=env, check=True)

    # Commands run in an empty directory, as a tool calling surefetch would;
    # one case runs in a project whose pyproject.toml configures surefetch,
    # which makes the hit read and check the configuration first.
    plain = work / "anywhere"
    plain.mkdir()
    project = work / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.surefetch]\nhttp_retries = 5\n")
    dependent = work / "dependent"
    dependent.mkdir()
    (dependent / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1"\ndependencies = ["surefetch>=0.1"]\n'
    )
    fresh_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FreshHandler)
    threading.Thread(target=fresh_server.serve_forever, daemon=True).start()
    small = f"http://127.0.0.1:{fresh_server.server_address[1]}/small.json"
    subprocess.run([*surefetch, "fetch", small, "-q"], env=env, check=True)

    cases = {
        "python -c pass": ([sys.executable, "-c", "pass"], plain),
        "surefetch --version": ([*surefetch, "--version"], plain),
        "surefetch fetch URL (cache hit)": ([*surefetch, "fetch", url], plain),
        "same, with --json": ([*surefetch, "fetch", url, "--json"], plain),
        "same, with -o FILE": ([*surefetch, "fetch", url, "-o", str(work / "copy")], plain),
        "same, in a project that depends on surefetch": ([*surefetch, "fetch", url], dependent),
        "same, in a project with [tool.surefetch]": ([*surefetch, "fetch", url], project),
        "hit of a fresh URL-keyed entry (max-age=3600)": ([*surefetch, "fetch", small], plain),
        "revalidation answered with 304 (--max-age 0)": (
            [*surefetch, "fetch", small, "--max-age", "0"],
            plain,
        ),
        "small-file miss (1 KB, --no-cache)": ([*surefetch, "fetch", small, "--no-cache"], plain),
        "python -c 'import surefetch'": ([sys.executable, "-c", "import surefetch"], plain),
    }
    if args.compare:
        other = console_script(args.compare)
        for name, (command, cwd) in list(cases.items()):
            if command[: len(surefetch)] == surefetch:
                cases[f"{name} [compared]"] = ([*other, *command[len(surefetch) :]], cwd)
        cases["python -c 'import surefetch' [compared]"] = (
            [args.compare, "-c", "import surefetch"],
            plain,
        )
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for command, cwd in cases.values():
        timed(command, env, cwd)  # warm the page cache
    for _ in range(args.runs):
        for name, (command, cwd) in cases.items():
            samples[name].append(timed(command, env, cwd))
    fresh_server.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    floor = statistics.median(samples["python -c pass"])
    print()
    print(f"median of {args.runs} interleaved runs, whole process")
    print()
    print("| command | wall (ms) | vs python -c pass | target |")
    print("|---|---:|---:|---:|")
    targets = {name: "<= 2x" for name in samples if name.startswith(("surefetch fetch", "same, "))}
    targets["surefetch --version"] = "<= 1.5x"
    targets["hit of a fresh URL-keyed entry (max-age=3600)"] = "<= 2x"
    miss = statistics.median(samples["small-file miss (1 KB, --no-cache)"])
    targets["revalidation answered with 304 (--max-age 0)"] = f"<= miss ({miss * 1000:.1f})"
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.1f} | {median / floor:.2f}x | {targets.get(name, '')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
