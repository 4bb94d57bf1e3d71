"""What the command line says at each verbosity: -q, the default, -v and -vv (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch.testing import ChaosServer, Fault

DATA = os.urandom(64 * 1024)


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/f.bin": DATA}) as chaos:
        yield chaos


def _run(args: list[str], tmp_path: Path, **changes: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env.update(SUREFETCH_CACHE_DIR=str(tmp_path / "cache"), SUREFETCH_NO_RETRY_DELAY="1")
    env.update(changes)
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_prints_one_warning_line_per_retry(tmp_path: Path, server: ChaosServer) -> None:
    server.script("/f.bin", [Fault.status(503), Fault.reset_after(1000)])
    done = _run(["fetch", server.url("/f.bin")], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("warning: HTTP 503")
    assert "(attempt 1 of 4); retrying in " in lines[0]
    assert "(attempt 2 of 4); retrying in " in lines[1]
    assert Path(done.stdout.strip()).read_bytes() == DATA


def test_quiet_silences_the_retry_lines(tmp_path: Path, server: ChaosServer) -> None:
    server.script("/f.bin", [Fault.status(503)])
    done = _run(["fetch", server.url("/f.bin"), "-q"], tmp_path)
    assert done.returncode == 0
    assert done.stderr == ""


def test_a_failure_after_retries_warns_each_time_then_errs(
    tmp_path: Path, server: ChaosServer
) -> None:
    server.script("/f.bin", [Fault.status(503)] * 3)
    done = _run(["fetch", server.url("/f.bin")], tmp_path, SUREFETCH_HTTP_RETRIES="2")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert [line.split("(attempt ")[1][:6] for line in lines[:2]] == ["1 of 3", "2 of 3"]
    assert lines[2].startswith("error: ")


def test_verbose_says_each_step(tmp_path: Path, server: ChaosServer) -> None:
    server.script("/f.bin", [Fault.reset_after(20_000)])
    url = server.url("/f.bin")
    done = _run(["fetch", url, "-v"], tmp_path)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert f"Cache miss: {url} is not in {tmp_path / 'cache'}" in err
    assert f"GET {url}\n" in err
    assert f"200 OK from {url}" in err
    assert "Retrying GET" in err and "(retry 1 of 3)" in err
    assert f"GET {url} (bytes=" in err
    assert "Resuming " in err and " from byte " in err
    assert "Computed sha256 " in err
    path = done.stdout.strip()
    assert f"Stored {url} in the cache: {path}" in err
    assert "Request headers" not in err
    hit = _run(["fetch", url, "-v"], tmp_path)
    assert hit.stderr == f"Cache hit: {url} is {path}\n"
    assert hit.stdout.strip() == path


def test_very_verbose_adds_headers_redacted_and_timings(
    tmp_path: Path, server: ChaosServer
) -> None:
    url = server.url("/f.bin", userinfo="me:s3cret-pw")
    done = _run(["fetch", url, "-vv"], tmp_path)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "Request headers: " in err and "Authorization: ***" in err
    assert "Response headers: " in err and "Content-Length: " in err
    assert "Took " in err
    assert "s3cret-pw" not in err


def test_verbose_extraction_summary(tmp_path: Path) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("a", "b", "c"):
            info = tarfile.TarInfo(f"pkg/{name}")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    with ChaosServer(files={"/p.tar.gz": buffer.getvalue()}) as chaos:
        done = _run(["fetch", chaos.url("/p.tar.gz"), "--extract", "out", "-v"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"Extracted 3 files of {chaos.url('/p.tar.gz')} into {tmp_path / 'out'}" in done.stderr


@pytest.mark.parametrize("transport", ["stdlib", "aiohttp"])
def test_verbose_revalidation_is_not_called_a_miss(
    tmp_path: Path, server: ChaosServer, transport: str
) -> None:
    url = server.url("/f.bin")
    assert _run(["fetch", url, "-q"], tmp_path, SUREFETCH_TRANSPORT=transport).returncode == 0
    done = _run(["fetch", url, "-v", "--max-age", "0"], tmp_path, SUREFETCH_TRANSPORT=transport)
    assert done.returncode == 0, done.stderr
    assert f"Cache entry of {url} is stale" in done.stderr
    assert "304 Not Modified" in done.stderr and "Revalidated " in done.stderr
    assert "Cache miss" not in done.stderr
