"""`surefetch demo` shows the retries, the resume, the Retry-After wait and the cache hit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from surefetch._cli.demo import run_demo
from surefetch._cli.main import main
from surefetch.testing import no_wait


def test_demo_narrates_every_fault_and_the_cache_hit(tmp_path: Path) -> None:
    out = io.StringIO()
    with no_wait():
        assert run_demo(faults=True, cache_dir=tmp_path, out=out) == 0
    text = out.getvalue()
    retries = [line for line in text.splitlines() if "Retrying GET" in line]
    assert len(retries) == 3
    # The demo extracts: its download runs on http.client, which says "Connection reset by peer".
    assert "connection reset" in retries[0].lower() and "resuming at byte" in retries[0]
    assert "HTTP 503" in retries[1]
    assert "Retry-After 1s" in retries[2] and "after 1.00s" in retries[2]
    assert "Resuming http://127.0.0.1:" in text
    assert "sha256 verified" in text
    assert "4 requests, 3 retries" in text
    assert "cache hit, no request" in text
    assert any(tmp_path.glob("archives-v1/*/*/tree/sample-dataset/README.txt"))


def test_demo_without_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--faults", "none"]) == 0
    text = capsys.readouterr().out
    assert "Retrying" not in text
    assert "1 request, 0 retries" in text
    assert "temporary cache, now removed" in text
