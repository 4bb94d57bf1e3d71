"""Install a ~200 MB fake Python build from a loopback mirror: uv, pbs-installer, surefetch.

    pip install ".[bench]" && python benchmarks/python_install.py [--size-mib 200] [--runs 3]

Builds a fake python-build-standalone ``install_only`` archive (a
``python/bin/python3`` shim, a stdlib-shaped tree, incompressible bytes),
serves it with the chaos server in a separate process, writes a downloads
JSON in uv's format pointing at it, and times as whole processes, clean and
with 3 connection resets spread over the body, the median of several runs
(interleaved: each run times every tool in turn) of:

* ``uv python install --python-downloads-json-url FILE --install-dir DIR``;
* pbs-installer's own install steps (its ``download`` then ``install_file``,
  which is what its ``install()`` runs, given the fake build's URL and
  sha256); it has no retry, so the harness restarts it, at most 4 attempts;
* ``surefetch python install --downloads-json FILE --install-dir DIR``.

Each run starts with an empty install directory and an empty cache. Reports
wall time, requests and body bytes sent by the server, and surefetch's time
over uv's both of the medians and as the median of the run-by-run ratios.
Targets (issue 11): clean at most 1.5x uv's wall time; with 3 resets faster
than uv and at most 1.05x the archive's bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = "20240726"
VERSION = "3.12.4"


def platform_key() -> tuple[str, str, str]:
    sys.path.insert(0, str(HERE.parent / "src"))
    from surefetch._python.platform import this_platform

    here = this_platform()
    return here.os, here.arch, here.libc


def build_archive(path: Path, *, size: int) -> None:
    shim = f'#!/bin/sh\necho "Python {VERSION}"\n'.encode()
    block = os.urandom(1 << 20)
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:

        def add(name: str, data: bytes | None = None, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))

        for directory in ("python", "python/bin", "python/lib", "python/lib/python3.12"):
            add(directory)
        add("python/bin/python3.12", shim, 0o755)
        # uv patches the build's sysconfig data after installing: give it one to patch.
        sysconfig = (
            b"# system configuration generated and used by the sysconfig module\n"
            b"build_time_vars = {'CC': 'cc', 'LDSHARED': 'cc -shared'}\n"
        )
        add("python/lib/python3.12/_sysconfigdata__linux_x86_64-linux-gnu.py", sysconfig)
        link = tarfile.TarInfo("python/bin/python3")
        link.type, link.linkname = tarfile.SYMTYPE, "python3.12"
        archive.addfile(link)
        for i in range(size >> 20):
            add(f"python/lib/python3.12/mod{i:04d}.so", block[i % 997 :] + block[: i % 997])


def downloads_json(url: str, sha256: str, system: str, arch: str, libc: str) -> dict[str, object]:
    return {
        f"cpython-{VERSION}-{system}-{arch}-{libc}": {
            "name": "cpython",
            "arch": {"family": arch, "variant": None},
            "os": "darwin" if system == "macos" else system,
            "libc": libc,
            "major": 3,
            "minor": 12,
            "patch": 4,
            "prerelease": "",
            "url": url,
            "sha256": sha256,
            "variant": None,
            "build": BUILD,
        }
    }


PBS = """
import sys
from pbs_installer import download, install_file
url, sha, dest, work = sys.argv[1:5]
for attempt in range(4):
    try:
        name = download((url, sha), work + "/archive")
        break
    except Exception as error:
        print("pbs-installer attempt failed:", error, file=sys.stderr)
else:
    raise SystemExit(1)
install_file(work + "/archive", dest, name)
"""


class Server:
    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_server.py"), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")},
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def ask(self, line: str) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    system, arch, libc = platform_key()
    work = Path(tempfile.mkdtemp(prefix="surefetch-python-bench-"))
    name = f"cpython-{VERSION}+{BUILD}-x86_64-unknown-linux-gnu-install_only.tar.gz"
    served = work / "served" / "releases" / "download" / BUILD
    served.mkdir(parents=True)
    archive = served / name
    print(f"building a {args.size_mib} MiB fake Python build ...", flush=True)
    build_archive(archive, size=args.size_mib << 20)
    size = archive.stat().st_size
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    server = Server(work / "served")
    path = f"/releases/download/{BUILD}/{name}"
    url = server.base_url.rstrip("/") + path
    catalog = work / "downloads.json"
    catalog.write_text(json.dumps(downloads_json(url, sha256, system, arch, libc)))
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "SUREFETCH_NO_RETRY_DELAY": "1"}
    env.pop("SUREFETCH_PYTHON_INSTALL_MIRROR", None)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"

    def commands(run_dir: Path) -> dict[str, list[str]]:
        return {
            "uv python install": [
                uv,
                "python",
                "install",
                VERSION,
                "--python-downloads-json-url",
                str(catalog),
                "--install-dir",
                str(run_dir / "py"),
                "--cache-dir",
                str(run_dir / "cache"),
                "--no-bin",
                "--no-config",
            ],
            "pbs-installer": [
                sys.executable,
                "-c",
                PBS,
                url,
                sha256,
                str(run_dir / "py"),
                str(run_dir),
            ],
            "surefetch python install": [
                sys.executable,
                "-m",
                "surefetch",
                "python",
                "install",
                VERSION,
                "--downloads-json",
                str(catalog),
                "--install-dir",
                str(run_dir / "py"),
                "--cache-dir",
                str(run_dir / "cache"),
                "-q",
            ],
        }

    rows = []
    paired: dict[str, list[float]] = {}
    try:
        for resets in (0, 3):
            case = "clean" if not resets else f"{resets} resets"
            tools = list(commands(work))
            results: dict[str, dict[str, list[float]]] = {
                tool: {"times": [], "requests": [], "sent": [], "ok": []} for tool in tools
            }
            # Interleaved, tool after tool within each run, so that a drift of
            # the machine's speed moves every tool alike; the ratio to uv is
            # then taken run by run (paired) as well as of the medians.
            for _ in range(args.runs):
                for tool in tools:
                    run_dir = work / "run"
                    shutil.rmtree(run_dir, ignore_errors=True)
                    run_dir.mkdir()
                    before_requests = server.ask("count")
                    before_bytes = server.ask("bytes")
                    if resets:
                        server.ask(f"reset {path} {size // (resets + 1)} {resets}")
                    started = time.perf_counter()
                    done = subprocess.run(
                        commands(run_dir)[tool], env=env, capture_output=True, text=True
                    )
                    result = results[tool]
                    result["times"].append(time.perf_counter() - started)
                    result["ok"].append(float(done.returncode == 0))
                    if done.returncode != 0:
                        said = done.stderr.strip()[-600:]
                        print(f"  {tool} failed ({done.returncode}): {said}", flush=True)
                    result["requests"].append(float(server.ask("count") - before_requests))
                    result["sent"].append(float(server.ask("bytes") - before_bytes))
                    server.ask(f"reset {path} 0 0")
            for tool in tools:
                result = results[tool]
                rows.append(
                    (
                        case,
                        tool,
                        statistics.median(result["times"]),
                        statistics.median(result["requests"]),
                        statistics.median(result["sent"]) / size,
                        f"{int(sum(result['ok']))}/{args.runs}",
                    )
                )
                print(f"  {rows[-1]}", flush=True)
            ours, theirs = results["surefetch python install"], results["uv python install"]
            paired[case] = [a / b for a, b in zip(ours["times"], theirs["times"], strict=True)]
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\narchive: {size / (1 << 20):.0f} MiB, medians of {args.runs} interleaved runs\n")
    print("| case | tool | wall time | requests | bytes sent / archive | succeeded |")
    print("|---|---|---|---|---|---|")
    for case, tool, wall, count, ratio, ok in rows:
        print(f"| {case} | {tool} | {wall:.2f} s | {count:g} | {ratio:.2f}x | {ok} |")
    for case in ("clean", "3 resets"):
        by = {tool: wall for c, tool, wall, *_ in rows if c == case}
        ratio = by["surefetch python install"] / by["uv python install"]
        pairs = paired[case]
        print(
            f"{case}: surefetch / uv wall time = {ratio:.2f} (of the medians); "
            f"{statistics.median(pairs):.2f} (median of {len(pairs)} paired runs, "
            f"{min(pairs):.2f} to {max(pairs):.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
