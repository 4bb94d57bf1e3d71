"""Getting one large wheel over loopback: surefetch against pip, uv, pooch and curl.

    pip install ".[bench]" && python benchmarks/peers.py [--size-mib 256] [--runs 3]

Builds a valid wheel (``peerbench-1.0-py3-none-any.whl``: a package holding
``data.bin`` of random bytes, with METADATA, WHEEL and a RECORD of sha256
entries, so pip and uv accept it), serves it from the chaos server in a
separate process, and times each tool as a whole process, the median of
``--runs`` interleaved runs with fresh output and cache directories, in two
scenarios:

(a) fault-free;
(b) the server resets the connection every 64 MiB, on every request, so only a
    tool that resumes with Range can finish (every tool that has a retry knob
    gets 10 retries; finishing takes ceil(size / 64 MiB) - 1 of them).

A run counts as a success only if the tool exits 0 and its output is right:
the sha256 of the downloaded wheel, or of ``peerbench/data.bin`` in the
extracted or installed tree. A tool that is not installed is reported as such;
a run that exceeds ``--timeout`` is killed and reported as timed out.

tenacity and stamina are retry decorators, not downloaders: their comparison is
``benchmarks/retry_overhead.py``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
RESET_EVERY = 64 * MIB
RETRIES = 10
WHEEL = "peerbench-1.0-py3-none-any.whl"
DIST_INFO = "peerbench-1.0.dist-info"
PY = sys.executable


# -- the server ---------------------------------------------------------------------------


class Server:
    """``benchmarks/_server.py`` in its own process, scripted over stdin."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [PY, str(HERE / "_server.py"), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base = self.process.stdout.readline().strip()
        if not self.base:
            raise RuntimeError("the chaos server did not start")

    def command(self, line: str) -> int:
        """Send one command; returns the number of requests served so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the wheel ------------------------------------------------------------------------------


def _record_hash(digest: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel(path: Path, size: int) -> tuple[str, str]:
    """Write a valid pure-Python wheel; returns (sha256 of the wheel, of data.bin)."""
    small = {
        "peerbench/__init__.py": b'"""Payload for benchmarks/peers.py."""\n__version__ = "1.0"\n',
        f"{DIST_INFO}/METADATA": b"Metadata-Version: 2.1\nName: peerbench\nVersion: 1.0\n"
        b"Summary: Payload for benchmarks/peers.py\n",
        f"{DIST_INFO}/WHEEL": b"Wheel-Version: 1.0\nGenerator: peerbench\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for name in ("peerbench/__init__.py",):
            wheel.writestr(name, small[name], compress_type=zipfile.ZIP_DEFLATED)
            record.append(
                f"{name},{_record_hash(hashlib.sha256(small[name]).digest())},{len(small[name])}"
            )
        info = zipfile.ZipInfo("peerbench/data.bin", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED  # random bytes do not compress
        info.file_size = size  # lets zipfile pick zip64 up front if needed
        data_digest = hashlib.sha256()
        with wheel.open(info, "w") as out:
            for _ in range(size // MIB):
                chunk = os.urandom(MIB)
                out.write(chunk)
                data_digest.update(chunk)
        record.append(f"peerbench/data.bin,{_record_hash(data_digest.digest())},{size}")
        for name in (f"{DIST_INFO}/METADATA", f"{DIST_INFO}/WHEEL"):
            wheel.writestr(name, small[name], compress_type=zipfile.ZIP_DEFLATED)
            record.append(
                f"{name},{_record_hash(hashlib.sha256(small[name]).digest())},{len(small[name])}"
            )
        record.append(f"{DIST_INFO}/RECORD,,")
        wheel.writestr(
            f"{DIST_INFO}/RECORD", "\n".join(record) + "\n", compress_type=zipfile.ZIP_DEFLATED
        )
    return sha256_of(path), data_digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(4 * MIB)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


# -- the cases ------------------------------------------------------------------------------


@dataclass
class Paths:
    url: str
    sha: str  # of the wheel
    out: str  # where the result lands: a file, a directory or a cache
    cache: str  # the tool's cache, where it has one apart from ``out``


@dataclass
class Case:
    name: str
    build: Callable[[Paths, bool], list[str]]  # (paths, faulty) -> argv
    expect: str  # "wheel": a file under out is the wheel; "data": out/peerbench/data.bin
    resumes_hint: str  # shown when it finished under resets
    resumes_no: str  # shown when it did not
    verifies: str
    extracts: str
    missing: str | None = None  # why it cannot run, if it cannot
    env: dict[str, str] = field(default_factory=dict)
    shown: Callable[[bool], str] | None = None  # how to print the command
    version: str = ""


POOCH_CODE = (
    "import pooch, sys; "
    "print(pooch.retrieve(sys.argv[1], known_hash='sha256:' + sys.argv[2], path=sys.argv[3]))"
)


def _pip_supports_resume_retries() -> bool | None:
    """None if pip is not installed for this python."""
    try:
        done = subprocess.run(
            [PY, "-m", "pip", "download", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_base_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return "--resume-retries" in done.stdout


def _find_uv() -> str | None:
    try:
        import uv  # type: ignore[import-not-found]

        found = str(uv.find_uv_bin())
        if os.access(found, os.X_OK):
            return found
    except (ImportError, FileNotFoundError):
        pass
    beside = Path(PY).parent / "uv"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _version(argv: list[str]) -> str:
    """The first line of ``argv`` (a ``--version`` command), cut to name and version."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_base_env())
    except (OSError, subprocess.TimeoutExpired):
        return ""
    words = done.stdout.split()
    return " ".join(words[:2]) if done.returncode == 0 else ""


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    loopback = "127.0.0.1,localhost,::1"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{loopback}" if env.get(key) else loopback
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"  # no network look-up on every pip run
    return env


def build_cases() -> list[Case]:
    surefetch = [PY, "-m", "surefetch", "fetch"]
    pip_resume = _pip_supports_resume_retries()
    uv = _find_uv()
    curl = shutil.which("curl")
    has_pooch = importlib.util.find_spec("pooch") is not None

    def pip_argv(p: Paths, faulty: bool) -> list[str]:
        argv = [PY, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", p.out]
        argv += ["--retries", str(RETRIES)]
        if pip_resume:
            argv += ["--resume-retries", str(RETRIES)]
        return [*argv, p.url]

    def curl_argv(p: Paths, faulty: bool) -> list[str]:
        assert curl is not None
        if not faulty:
            return [curl, "-sS", "-o", p.out, p.url]
        # --retry-delay 0 would mean curl's default exponential backoff (1 s doubling to
        # 10 min), which alone outlasts the timeout; 1 s keeps the retries cheap.
        return [
            curl,
            "-sS",
            "--retry",
            str(RETRIES),
            "--retry-all-errors",
            "--retry-delay",
            "1",
            "-C",
            "-",
            "-o",
            p.out,
            p.url,
        ]

    cases = [
        Case(
            "surefetch fetch --sha256",
            lambda p, _: [
                *surefetch,
                p.url,
                "--sha256",
                p.sha,
                "--cache-dir",
                p.out,
                "--retries",
                str(RETRIES),
            ],
            expect="wheel",
            resumes_hint="Range",
            resumes_no="",
            verifies="yes (`--sha256`)",
            extracts="n/a (no extraction asked)",
        ),
        Case(
            "surefetch fetch --extract",
            lambda p, _: [
                *surefetch,
                p.url,
                "--extract",
                p.out,
                "--cache-dir",
                p.cache,
                "--retries",
                str(RETRIES),
            ],
            expect="data",
            resumes_hint="Range",
            resumes_no="",
            verifies="only with `--sha256` (not passed here)",
            extracts="yes (streaming, path and size checks)",
        ),
        Case(
            "pip download",
            pip_argv,
            expect="wheel",
            resumes_hint="Range, `--resume-retries`",
            resumes_no="" if pip_resume else "this pip has no `--resume-retries`",
            verifies="only with `--require-hashes` or a `#sha256=` URL fragment (not used)",
            extracts="n/a (download only)",
            missing=None if pip_resume is not None else "not installed",
        ),
        Case(
            "uv pip install --target",
            lambda p, _: [
                uv or "uv",
                "pip",
                "install",
                "--no-deps",
                "--no-cache",
                "--python",
                PY,
                "--target",
                p.out,
                p.url,
            ],
            expect="data",
            resumes_hint="Range, but only after a round of retries restarting from byte 0",
            resumes_no="",
            verifies="only with `--require-hashes` or a `#sha256=` URL fragment (not used)",
            extracts="installs (unpacks the wheel; path safety not tested here)",
            missing=None if uv else "not installed",
            env={"UV_HTTP_RETRIES": str(RETRIES)},
        ),
        Case(
            "pooch.retrieve",
            lambda p, _: [PY, "-c", POOCH_CODE, p.url, p.sha, p.out],
            expect="wheel",
            resumes_hint="",
            resumes_no="`retrieve` does not retry",
            verifies="yes (`known_hash`)",
            extracts="n/a (no processor asked)",
            missing=None if has_pooch else "not installed",
            shown=lambda _: (
                "`python -c 'pooch.retrieve(URL, known_hash=\"sha256:H\", path=D)'`"
                " (no retry knob: `retrieve` calls `stream_download(..., retry_if_failed=0)`)"
            ),
        ),
        Case(
            "curl",
            curl_argv,
            expect="wheel",
            resumes_hint="`-C -` with `--retry`",
            resumes_no="`--retry` restarts from where `-C -` started, not where it broke off",
            verifies="no",
            extracts="no",
            missing=None if curl else "not installed",
        ),
    ]
    versions = {
        "surefetch": _version([*surefetch[:3], "--version"]),
        "pip": _version([PY, "-m", "pip", "--version"]),
        "uv": _version([uv, "--version"]) if uv else "",
        "pooch": "",
        "curl": _version([curl, "--version"]) if curl else "",
    }
    if has_pooch:
        from importlib.metadata import version

        versions["pooch"] = f"pooch {version('pooch')}"
    for case in cases:
        if not case.missing:
            case.version = versions[case.name.split()[0].split(".")[0]]
    return cases


def shown_command(case: Case, faulty: bool) -> str:
    if case.shown is not None:
        return case.shown(faulty)
    argv = case.build(Paths(url="URL", sha="H", out="OUT", cache="D"), faulty)
    words = ["python" if w == PY else Path(w).name if w == argv[0] else w for w in argv]
    env = " ".join(f"{k}={v}" for k, v in case.env.items())
    return f"`{(env + ' ') if env else ''}{shlex.join(words)}`"


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    seconds: float
    requests: int
    failure: str = ""  # "", "failed", "timed out", "wrong output"
    detail: str = ""  # last line of stderr on failure


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _check(case: Case, out: Path, wheel_sha: str, data_sha: str, wheel_size: int) -> bool:
    if case.expect == "data":
        data = out / "peerbench" / "data.bin"
        return data.is_file() and sha256_of(data) == data_sha
    candidates = [out] if out.is_file() else [p for p in out.rglob("*") if p.is_file()]
    return any(
        p.stat().st_size == wheel_size and sha256_of(p) == wheel_sha
        for p in candidates
        if not p.is_symlink()
    )


def run_once(
    case: Case,
    server: Server,
    url: str,
    scratch: Path,
    faulty: bool,
    timeout: float,
    hashes: tuple[str, str, int],
) -> Outcome:
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    out = scratch / ("wheel.whl" if case.name == "curl" else "out")
    paths = Paths(url=url, sha=hashes[0], out=str(out), cache=str(scratch / "cache"))
    argv = case.build(paths, faulty)
    env = {**_base_env(), **case.env}
    path = "/" + WHEEL
    before = server.command(
        f"reset {path} {RESET_EVERY} 1000000" if faulty else f"reset {path} 0 0"
    )
    stderr_file = scratch.parent / "stderr.txt"
    with stderr_file.open("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # so a timeout can end the tool and its children
        )
        try:
            code = process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
            timed_out = True
        elapsed = time.perf_counter() - started
        stderr.seek(0)
        detail = _last_line(stderr.read())
    requests = server.command("count") - before
    if timed_out:
        outcome = Outcome(False, elapsed, requests, "timed out", detail)
    elif code != 0:
        outcome = Outcome(False, elapsed, requests, "failed", f"exit {code}: {detail}")
    elif not _check(case, out, *hashes):
        outcome = Outcome(False, elapsed, requests, "wrong output", detail)
    else:
        outcome = Outcome(True, elapsed, requests)
    shutil.rmtree(scratch, ignore_errors=True)
    return outcome


def summarize(outcomes: list[Outcome], faulty: bool, runs: int) -> str:
    if not outcomes:
        return "not run"
    cell = _summary(outcomes, faulty)
    if len(outcomes) < runs:
        cell += f" ({len(outcomes)} of {runs} runs: too slow to repeat)"
    return cell


def _summary(outcomes: list[Outcome], faulty: bool) -> str:
    good = [o for o in outcomes if o.ok]
    requests = int(statistics.median(o.requests for o in outcomes))
    if len(good) == len(outcomes):
        seconds = statistics.median(o.seconds for o in good)
        return f"{seconds:.2f} ({requests} requests)" if faulty else f"{seconds:.2f}"
    bad = [o for o in outcomes if not o.ok]
    kind = bad[0].failure
    partial = "" if not good else f" in {len(bad)}/{len(outcomes)} runs"
    if kind == "timed out":
        return f"timed out{partial}"
    after = int(statistics.median(o.requests for o in bad))
    noun = "request" if after == 1 else "requests"
    return f"{kind}{partial} after {after} {noun}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256, help="size of data.bin (MiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="per run, in seconds")
    parser.add_argument(
        "--slow",
        type=float,
        default=60.0,
        help="a case with a run longer than this (seconds) is not run again in that scenario",
    )
    args = parser.parse_args()
    if args.size_mib < 1 or args.runs < 1:
        parser.error("--size-mib and --runs must be at least 1")
    size = args.size_mib * MIB

    cases = build_cases()
    work = Path(tempfile.mkdtemp(prefix="surefetch-peers-"))
    server: Server | None = None
    results: dict[tuple[str, bool], list[Outcome]] = {}
    try:
        root = work / "served"
        root.mkdir()
        print(f"building a wheel with {args.size_mib} MiB of data ...", flush=True)
        wheel_sha, data_sha = make_wheel(root / WHEEL, size)
        wheel_size = (root / WHEEL).stat().st_size
        hashes = (wheel_sha, data_sha, wheel_size)
        server = Server(root)
        url = f"{server.base}/{WHEEL}"
        scratch = work / "scratch"
        for run in range(args.runs):  # scenarios interleaved too: page cache, writeback
            for faulty in (False, True):
                label = "resets every 64 MiB" if faulty else "fault-free"
                for case in cases:
                    if case.missing:
                        continue
                    done = results.setdefault((case.name, faulty), [])
                    if any(o.failure == "timed out" or o.seconds > args.slow for o in done):
                        continue  # one slow run is enough: do not spend minutes more
                    outcome = run_once(case, server, url, scratch, faulty, args.timeout, hashes)
                    done.append(outcome)
                    state = "ok" if outcome.ok else outcome.failure
                    print(
                        f"  [{label}, run {run + 1}/{args.runs}] {case.name}: "
                        f"{outcome.seconds:.2f}s, {outcome.requests} requests, {state}",
                        flush=True,
                    )
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(work, ignore_errors=True)

    needed = -(-wheel_size // RESET_EVERY)
    print()
    print(
        f"One {wheel_size / MIB:.0f} MiB wheel over loopback, median of {args.runs} runs "
        f"(whole process, fresh directories each run)"
    )
    print()
    print(
        "| tool | fault-free (s) | with resets every 64 MiB (s) | resumes? | verifies sha256? "
        "| extracts safely? |"
    )
    print("|---|---:|---:|---|---|---|")
    for case in cases:
        if case.missing:
            cells = [case.missing, case.missing, "?"]
        else:
            clean = results.get((case.name, False), [])
            faulty_runs = results.get((case.name, True), [])
            resumed = bool(faulty_runs) and all(o.ok for o in faulty_runs)
            note = case.resumes_hint if resumed else case.resumes_no
            resumes = ("yes" if resumed else "no") + (f" ({note})" if note else "")
            cells = [
                summarize(clean, False, args.runs),
                summarize(faulty_runs, True, args.runs),
                resumes,
            ]
        print(f"| {case.name} | {' | '.join(cells)} | {case.verifies} | {case.extracts} |")
    print()
    print(
        f"With resets, every request is reset after 64 MiB of body, so finishing takes "
        f"{needed} requests with Range resume and is impossible without it; "
        f"`resumes?` is measured that way. Every tool with a retry knob gets {RETRIES}."
    )
    print()
    print("Commands (OUT: a fresh directory or file per run; D: a fresh cache):")
    print()
    for case in cases:
        if case.missing:
            print(f"- {case.name}: {case.missing}")
            continue
        clean, faulty = shown_command(case, False), shown_command(case, True)
        name = f"{case.name} ({case.version})" if case.version else case.name
        if clean == faulty:
            print(f"- {name}: {clean}")
        else:
            print(f"- {name}: {clean}; with resets {faulty}")
    print(
        "- every tool: stdout and stderr are files (no terminal), loopback exempt from proxies, "
        "`PIP_DISABLE_PIP_VERSION_CHECK=1`"
    )
    failures = [
        (name, faulty, bad[0])
        for (name, faulty), outcomes in results.items()
        if (bad := [o for o in outcomes if not o.ok])
    ]
    if failures:
        print()
        print("First failure of each case (last line of stderr):")
        print()
        for name, faulty, o in failures:
            where = "with resets" if faulty else "fault-free"
            print(f"- {name}, {where}: {o.failure}: {o.detail or '(no stderr)'}")
    print()
    print(
        "tenacity and stamina are retry decorators, not downloaders: "
        "see benchmarks/retry_overhead.py for the per-call overhead comparison."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
