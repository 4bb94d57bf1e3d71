"""Mistakes people make on the command line: a clear message, the right exit code, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch.testing import ChaosServer, Fault


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/f.bin": b"x" * 4096, "/a.tar.gz": b"not really"}) as chaos:
        yield chaos


def _run(args: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env["SUREFETCH_CACHE_DIR"] = str(tmp_path / "cache")
    env["SUREFETCH_NO_RETRY_DELAY"] = "1"
    env.update(changes)
    return env


def _check_usage_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") or lines[0].startswith("usage:") is False
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


BAD_USAGE = [
    (["fetch", "example.org/file.tar.gz"], {}, ["not valid", "starts with http:// or https://"]),
    (["fetch", "ftp://example.org/file"], {}, ["scheme 'ftp'"]),
    (["fetch", "http://"], {}, ["no host"]),
    (["fetch", "http://[::1/x"], {}, ["not valid"]),
    (["fetch", "http://h.invalid/x", "--sha256", "abc"], {}, ["sha256", "64 hexadecimal"]),
    (["fetch", "http://h.invalid/x", "--retries", "-3"], {}, ["--retries"]),
    (["fetch", "http://h.invalid/x", "--strip-components", "x"], {}, ["--strip-components"]),
    (
        ["fetch", "http://h.invalid/x"],
        {"SUREFETCH_HTTP_RETRIES": "many"},
        ["SUREFETCH_HTTP_RETRIES"],
    ),
    (["fetch", "http://h.invalid/x"], {"SUREFETCH_OFFLINE": "perhaps"}, ["SUREFETCH_OFFLINE"]),
    (
        ["fetch", "http://h.invalid/x"],
        {"SUREFETCH_LOCK_TIMEOUT": "soon"},
        ["SUREFETCH_LOCK_TIMEOUT"],
    ),
    (
        ["fetch", "http://h.invalid/x"],
        {"SUREFETCH_CONNECT_TIMEOUT": "-1"},
        ["SUREFETCH_CONNECT_TIMEOUT"],
    ),
    (
        ["fetch", "http://h.invalid/x"],
        {"SUREFETCH_HTTP_TIMEOUT": "nan"},
        ["SUREFETCH_HTTP_TIMEOUT"],
    ),
]


@pytest.mark.parametrize(("args", "env", "needles"), BAD_USAGE, ids=lambda v: str(v)[:40])
def test_bad_usage_and_configuration(
    tmp_path: Path, args: list[str], env: dict[str, str], needles: list[str]
) -> None:
    _check_usage_error(_run(args, env=_env(tmp_path, **env), cwd=tmp_path), *needles)


def test_unusable_cache_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = _run(
        ["fetch", "http://h.invalid/x", "--cache-dir", str(blocker / "cache")],
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    _check_usage_error(done, "cache")


def test_non_empty_extract_target(tmp_path: Path, server: ChaosServer) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    done = _run(
        ["fetch", server.url("/a.tar.gz"), "--extract", str(target)],
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    _check_usage_error(done, "not empty")
    assert (target / "mine.txt").read_text() == "keep me"


def test_missing_file_exits_1_with_causes(tmp_path: Path, server: ChaosServer) -> None:
    done = _run(["fetch", server.url("/missing.bin")], env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"error: Failed to download {server.url('/missing.bin')}"
    assert lines[1].startswith("  Caused by: HTTP 404")
    assert "Traceback" not in done.stderr


def test_not_an_archive_exits_1(tmp_path: Path, server: ChaosServer) -> None:
    done = _run(
        ["fetch", server.url("/a.tar.gz"), "--extract", str(tmp_path / "out")],
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "a.tar.gz" in done.stderr.splitlines()[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_exits_130_and_leaves_the_cache_sound(tmp_path: Path) -> None:
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
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip() == "error: interrupted"
    assert out == ""
    verify = _run(["cache", "verify"], env=_env(tmp_path), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not list((tmp_path / "cache").glob("downloads-v1/*/*"))
