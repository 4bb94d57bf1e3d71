"""The rough edges of the command line (issue 13), each through the CLI in a real subprocess."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch.testing import ChaosServer, Fault

TREE = os.urandom(200_000)


def _tar_gz() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/data.bin")
        info.size = len(TREE)
        tar.addfile(info, io.BytesIO(TREE))
    return buffer.getvalue()


ARCHIVE = _tar_gz()


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/f.bin": b"x" * 4096, "/a.tar.gz": ARCHIVE}) as chaos:
        yield chaos


def _env(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env["SUREFETCH_CACHE_DIR"] = str(tmp_path / "cache")
    env["SUREFETCH_NO_RETRY_DELAY"] = "1"
    env.update(changes)
    return env


def _run(args: list[str], tmp_path: Path, **changes: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args],
        env=_env(tmp_path, **changes),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_strip_components_without_extract_is_a_usage_error(tmp_path: Path) -> None:
    done = _run(["fetch", "http://h.invalid/x.tar.gz", "--strip-components", "1"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --strip-components needs --extract DIR: there is no tree to strip"
    )


def test_an_unknown_flag_shows_the_commands_usage(tmp_path: Path) -> None:
    done = _run(["fetch", "http://h.invalid/x", "--bogus"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: surefetch fetch ")
    assert done.stderr.strip().endswith("surefetch fetch: error: unrecognized arguments: --bogus")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("not-a-url", "expected an absolute URL that starts with http:// or https://"),
        ("http://" + "a" * 70 + ".com/x", "longer than 63 characters"),
        ("http://xn--a.com/x", "not a valid international domain name"),
        ("http://" + "abcdefghi." * 30 + "com/x", "longer than 253 characters"),
        ("http://a..b/x", "empty label"),
    ],
)
def test_a_bad_url_is_a_usage_error(tmp_path: Path, url: str, needle: str) -> None:
    done = _run(["fetch", url], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: URL ")
    assert needle in lines[0]
    assert "none" not in lines[0]


def test_a_plain_http_connection_failure_says_nothing_of_tls(tmp_path: Path) -> None:
    with ChaosServer(files={}) as closed:
        url = closed.url("/x")  # the port is free again once the server stops
    done = _run(["fetch", url], tmp_path, SUREFETCH_HTTP_RETRIES="1")
    assert done.returncode == 1
    assert "Cannot connect to host 127.0.0.1:" in done.stderr
    assert "ssl" not in done.stderr.lower()


def test_a_deadline_says_which_and_how_long(tmp_path: Path, server: ChaosServer) -> None:
    server.script("/f.bin", [Fault.stall(30, after=100)])
    done = _run(["fetch", server.url("/f.bin")], tmp_path, SUREFETCH_DEADLINE="0.5")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "the deadline of 0.5s passed while the download was still running" in lines[0]
    assert "SUREFETCH_DEADLINE" in lines[0]
    assert "TimeoutError" not in done.stderr and "CancelledError" not in done.stderr


def test_extract_with_a_wrong_sha256_shows_the_mismatch_only(
    tmp_path: Path, server: ChaosServer
) -> None:
    wrong = "0" * 64
    args = ["fetch", server.url("/a.tar.gz"), "--extract", "out", "--sha256", wrong]
    done = _run(args, tmp_path)
    assert done.returncode == 1
    assert f"expected sha256 {wrong}, got " in done.stderr
    assert "EOFError" not in done.stderr and ".part" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_elapsed_of_a_hit_with_extract_counts_the_extraction(
    tmp_path: Path, server: ChaosServer
) -> None:
    url = server.url("/a.tar.gz")
    assert _run(["fetch", url, "--extract", "one"], tmp_path).returncode == 0
    done = _run(["fetch", url, "--extract", "two", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["from_cache"] is True
    assert (tmp_path / "two" / "pkg" / "data.bin").read_bytes() == TREE
    # The extraction of 200 kB, measured apart in this process, bounds it from below.
    started = time.monotonic()
    with tarfile.open(tmp_path / "cache" / record["cache_path"], "r:gz") as tar:
        tar.extractall(tmp_path / "three", filter="data")
    assert record["elapsed_s"] > 0
    assert record["elapsed_s"] >= round(time.monotonic() - started, 3) / 10


@pytest.mark.parametrize(
    "command", [["fetch"], ["cache"], ["cache", "verify"], ["demo"], ["config"]]
)
def test_every_help_shows_an_example_exit_codes_and_variables(
    tmp_path: Path, command: list[str]
) -> None:
    done = _run([*command, "--help"], tmp_path)
    assert done.returncode == 0
    text = done.stdout
    assert "example" in text and f"surefetch {' '.join(command)}" in text.split("example")[1]
    exit_codes = text.split("exit codes:")[1].split("environment variables:")[0]
    for code in ("0", "1", "2", "130", "143"):
        assert f"\n  {code} " in exit_codes
    variables = text.split("environment variables:")[1]
    assert "SUREFETCH_" in variables


def test_fetch_help_lists_every_setting_variable(tmp_path: Path) -> None:
    from surefetch._config import SETTINGS

    text = _run(["fetch", "--help"], tmp_path).stdout.split("environment variables:")[1]
    for setting in SETTINGS:
        assert f"  {setting.env}\n" in text


def test_sigterm_exits_143_keeps_the_partial_and_the_cache_sound(tmp_path: Path) -> None:
    data = os.urandom(2 << 20)
    with ChaosServer(files={"/slow.bin": data}) as server:
        server.script("/slow.bin", [Fault.stall(60, after=1 << 20)])
        process = subprocess.Popen(
            [sys.executable, "-m", "surefetch", "fetch", server.url("/slow.bin")],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        partial_dir = tmp_path / "cache" / "tmp" / "partial"
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size >= 1 << 20 for p in partial_dir.glob("*.part")):
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 143, err
        assert err.strip() == "error: terminated (SIGTERM)"
        assert out == ""
        kept = [p for p in partial_dir.glob("*.part") if p.stat().st_size >= 1 << 20]
        assert len(kept) == 1
        verify = _run(["cache", "verify"], tmp_path)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        # The next fetch resumes from what SIGTERM left.
        again = _run(["fetch", server.url("/slow.bin"), "--json"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["resumed_bytes"] >= 1 << 20
