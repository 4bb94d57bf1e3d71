"""Many small files at once, side by side with curl --parallel in one run (issue 14).

    pip install ".[bench]" && python benchmarks/many_files.py [--files 500] [--runs 3]

Serves ``--files`` files of 100 KiB from the chaos server in a separate
process over loopback, and times as whole processes, interleaved, with a
fresh output directory or cache every run (medians shown):

* ``curl --parallel --parallel-max 16``, every URL in one process;
* ``curl`` with every URL in one process, one after another (kept-alive);
* ``surefetch.fetch_many(urls, concurrency=16)``: plain files run in 16
  threads on the standard library's ``http.client``, each thread on a
  kept-alive connection;
* the same on the aiohttp transport (``SUREFETCH_TRANSPORT=aiohttp``), the
  event loop that ran every ``fetch_many`` before;
* ``surefetch.fetch(url)`` for each URL in turn, in one process;
* ``pooch.retrieve`` for each URL in turn, in one process.

Targets: ``fetch_many`` at least 3x faster than ``fetch`` one by one, and at
most 1.5x ``curl --parallel``. curl writes its files and leaves them in the
page cache; each surefetch entry is built under a per-key lock and appears
by one rename (without fsync under the default ``fsync`` mode, ``lazy``: it
is checked once after a restart instead).

The server is nginx when one is installed (``--server auto``, the default,
or ``--server nginx``): a private configuration in the benchmark's temporary
directory, one worker, listening on loopback only, stopped with the
benchmark. Otherwise (or with ``--server chaos``) it is the Python chaos
server, whose own CPU is then in every row.

Over loopback there is no round trip to overlap: on a machine with few
cores every row is bound by its CPU per file (curl's two rows take the same
time), and fetching at once can only add the cores that fetching one by one
leaves idle. ``--latency-ms 20`` puts a relay (`_latency.py`) in front of
the server that adds a 20 ms round trip to every exchange, as a real
network does, in every row.
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

HERE = Path(__file__).resolve().parent
SIZE = 100 << 10

sys.path.insert(0, str(HERE))
from fetch_loop import Server  # noqa: E402  (a sibling script, not a package)

_FETCH_MANY = (
    "import sys, surefetch; urls = sys.stdin.read().split(); "
    "surefetch.fetch_many(urls, cache=sys.argv[1], concurrency=16)"
)
_FETCH_LOOP = (
    "import sys, surefetch; urls = sys.stdin.read().split()\n"
    "for url in urls: surefetch.fetch(url, cache=sys.argv[1])"
)
_POOCH_LOOP = (
    "import sys, pooch; urls = sys.stdin.read().split()\n"
    "pooch.get_logger().setLevel('WARNING')  # one line per file on stderr otherwise\n"
    "for url in urls: pooch.retrieve(url, known_hash=None, path=sys.argv[1], progressbar=False)"
)


def _curl(urls: list[str], out: Path, *, parallel: bool) -> list[str]:
    command = ["curl", "-sS", "--fail"]  # an error page must not pass for a file
    if parallel:
        # -s leaves the parallel progress meter on (curl 7.88): it is turned off on its own.
        command += ["--parallel", "--parallel-max", "16", "--no-progress-meter"]
    for index, url in enumerate(urls):
        command += ["-o", str(out / f"f{index}.bin"), url]
    return command


_NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


class Latency:
    """A relay adding ``round_trip_ms`` to every exchange with ``base`` (`_latency.py`)."""

    def __init__(self, base: str, round_trip_ms: float) -> None:
        port = base.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_latency.py"), port, str(round_trip_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base = self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


class Nginx:
    """nginx serving ``root`` on a free loopback port, from a configuration under ``prefix``."""

    def __init__(self, root: Path, prefix: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        (prefix / "tmp").mkdir(parents=True)
        conf = prefix / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(prefix=prefix, port=port, root=root))
        # -e: the error log before the configuration is read, which would
        # otherwise be the system's own path.
        self.process = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
        )
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        self.close()
        raise RuntimeError(f"nginx did not start: {(prefix / 'error.log').read_text()}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=("auto", "nginx", "chaos"), default="auto")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="a round trip added to every exchange by a relay in front of the server",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="surefetch-many-"))
    # Readable by nginx's workers, which run as an unprivileged user.
    work.chmod(0o755)
    served = work / "served"
    served.mkdir()
    for index in range(args.files):
        (served / f"f{index:04d}.bin").write_bytes(os.urandom(SIZE))
    use_nginx = args.server == "nginx" or (
        args.server == "auto" and shutil.which("nginx") is not None
    )
    server: Nginx | Server = Nginx(served, work / "nginx") if use_nginx else Server(served)
    relay = Latency(server.base, args.latency_ms) if args.latency_ms else None
    base = server.base if relay is None else relay.base
    urls = [f"{base}/f{index:04d}.bin" for index in range(args.files)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages start from .pyc files
    outs = work / "out"
    outs.mkdir()

    def python(code: str, *, transport: str | None = None) -> Callable[[Path], list[str]]:
        chosen = [] if transport is None else ["env", f"SUREFETCH_TRANSPORT={transport}"]
        return lambda out: [*chosen, sys.executable, "-c", code, str(out)]

    # Each way: its command line, given the fresh directory to write into.
    ways: dict[str, Callable[[Path], list[str]]] = {
        "curl --parallel --parallel-max 16": lambda out: _curl(urls, out, parallel=True),
        "curl, one process, one URL after another": lambda out: _curl(urls, out, parallel=False),
        "surefetch.fetch_many (16 at once)": python(_FETCH_MANY),
        "surefetch.fetch_many (16 at once), aiohttp transport": python(
            _FETCH_MANY, transport="aiohttp"
        ),
        "surefetch.fetch one by one": python(_FETCH_LOOP),
        "pooch.retrieve one by one": python(_POOCH_LOOP),
    }
    if shutil.which("curl") is None:
        ways = {name: way for name, way in ways.items() if not name.startswith("curl")}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for run in range(args.runs + 1):  # the first round only warms up
            for index, (name, command) in enumerate(ways.items()):
                # A new directory each time, none deleted until the end (the
                # commit of a deletion, and its trims on a disk mounted with
                # discard, would land in the next row's time), and no dirty
                # pages left by the row before, whose writeback would too.
                out = outs / f"{run}-{index}"
                out.mkdir()
                os.sync()
                started = time.perf_counter()
                subprocess.run(command(out), input="\n".join(urls), text=True, env=env, check=True)
                if run:
                    samples[name].append(time.perf_counter() - started)
    finally:
        if relay is not None:
            relay.close()
        server.close()
        shutil.rmtree(work, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    curl = medians.get("curl --parallel --parallel-max 16")
    one_by_one = medians["surefetch.fetch one by one"]
    served_by = "nginx" if use_nginx else "the Python chaos server"
    if relay is not None:
        served_by += f", {args.latency_ms:g} ms away (a relay adds the round trip)"
    print(
        f"\n{args.files} files of 100 KiB served by {served_by}, "
        f"median of {args.runs} interleaved runs, whole process"
    )
    print()
    print("| how | wall (s) | ms per file | x curl --parallel | speed-up over fetch one by one |")
    print("|---|---:|---:|---:|---:|")
    for name, wall in medians.items():
        versus = f"{wall / curl:.2f}" if curl else "n/a"
        print(
            f"| {name} | {wall:.2f} | {wall * 1000 / args.files:.2f} | {versus} "
            f"| {one_by_one / wall:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
