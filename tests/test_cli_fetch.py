"""`surefetch fetch` from the command line: output, --json, exit codes, messages."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch._cli.main import main
from surefetch.testing import ChaosServer, Fault

DATA = random.Random(3).randbytes(2 << 20)
SHA = hashlib.sha256(DATA).hexdigest()
JSON_KEYS = {
    "path",
    "url",
    "sha256",
    "size",
    "from_cache",
    "attempts",
    "retries",
    "resumed_bytes",
    "elapsed_s",
}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("SUREFETCH_HTTP_RETRIES", "SUREFETCH_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA}) as chaos:
        yield chaos


def test_prints_the_cached_path(server: ChaosServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", server.url("/data.bin")]) == 0
    out, err = capsys.readouterr()
    assert Path(out.strip()).read_bytes() == DATA
    assert err == ""


def test_json_output_has_the_documented_keys(
    server: ChaosServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script("/data.bin", [Fault.reset_after(len(DATA) // 2)])
    assert main(["fetch", server.url("/data.bin"), "--sha256", SHA, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) >= JSON_KEYS
    assert record["sha256"] == SHA
    assert record["size"] == len(DATA)
    assert record["from_cache"] is False
    assert record["attempts"] == 2 == server.request_count()
    assert record["retries"] == 1
    assert record["resumed_bytes"] > 0
    assert record["url"] == server.url("/data.bin")
    assert main(["fetch", server.url("/data.bin"), "--sha256", SHA, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["from_cache"] is True
    assert again["attempts"] == 0


def test_output_file(
    server: ChaosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "copy.bin"
    assert main(["fetch", server.url("/data.bin"), "-o", str(target), "--create-dirs"]) == 0
    assert target.read_bytes() == DATA
    assert capsys.readouterr().out.strip() == str(target)


def test_verbose_shows_retries_and_resumes(
    server: ChaosServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script("/data.bin", [Fault.status(503), Fault.reset_after(1 << 20)])
    assert main(["fetch", server.url("/data.bin"), "-v"]) == 0
    err = capsys.readouterr().err
    assert err.count("Retrying GET") == 2
    assert "Resuming" in err


def test_exhausted_retries_exit_1_with_causes(
    server: ChaosServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script("/data.bin", [Fault.reset_after(100)] * 4)
    assert main(["fetch", server.url("/data.bin"), "--retries", "3"]) == 1
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3  # one line per retry
    lines = [line for line in err.strip().splitlines() if line not in warnings]
    assert lines[0] == f"error: Failed to download {server.url('/data.bin')}"
    assert lines[1].startswith("  Caused by: Request failed after 3 retries in ")
    assert all(line.startswith("  Caused by: ") for line in lines[1:])
    assert "Traceback" not in err
    assert server.request_count() == 4


def test_credentials_never_appear(server: ChaosServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.url("/data.bin", userinfo="bob:hunter2pw") + "?sig=supersecret1"
    server.script("/data.bin", [Fault.status(503)])
    assert main(["fetch", url, "--json", "-v"]) == 0
    out, err = capsys.readouterr()
    assert "hunter2pw" not in out + err and "supersecret1" not in out + err
    assert json.loads(out)["url"].startswith("http://***@127.0.0.1")
    server.script("/data.bin", [Fault.status(500)] * 2)
    assert main(["fetch", url, "--no-cache", "--retries", "1", "-v"]) == 1
    out, err = capsys.readouterr()
    assert "hunter2pw" not in out + err and "supersecret1" not in out + err
    assert "***" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fetch", "ftp://example.org/x"], "scheme 'ftp'"),
        (["fetch", "http://127.0.0.1:9/x", "--sha256", "xyz"], "64 hexadecimal"),
        (["fetch", "http://127.0.0.1:9/x", "--retries", "many"], "--retries"),
        (["fetch", "http://127.0.0.1:9/x", "--retries", "-1"], "--retries"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_bad_environment_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUREFETCH_HTTP_RETRIES", "lots")
    assert main(["fetch", "http://127.0.0.1:9/x"]) == 2
    assert "SUREFETCH_HTTP_RETRIES='lots'" in capsys.readouterr().err


def test_offline_miss_exits_1(server: ChaosServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", server.url("/data.bin"), "--offline"]) == 1
    assert "offline" in capsys.readouterr().err
    assert server.request_count() == 0


def test_mirror_flag(server: ChaosServer, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["fetch", server.url("/nope"), "--mirror", server.url("/data.bin"), "--sha256", SHA]
    assert main(args) == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes() == DATA


def test_runs_as_a_console_command(server: ChaosServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "surefetch", "fetch", server.url("/data.bin"), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == DATA
