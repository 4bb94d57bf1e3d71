"""A content-keyed entry must hold the content its key names, on every hit and in verify.

The attack: rewrite an entry's payload and its entry.json so that they agree
with each other but not with the key. Before, `fetch --sha256 H` returned
the other bytes with exit 0, and `cache verify` called the entry sound.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from surefetch.cache import Cache
from surefetch.testing import ChaosServer

GOOD = b"the bytes that were asked for\n" * 100
EVIL = b"other bytes\n"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/tool.whl": GOOD}) as chaos:
        yield chaos


def _tamper(payload: Path) -> None:
    """Make the entry of ``payload`` consistent with other bytes."""
    payload.write_bytes(EVIL)
    meta_path = payload.parent.parent / "entry.json"
    meta = json.loads(meta_path.read_text())
    meta.update(sha256=hashlib.sha256(EVIL).hexdigest(), size=len(EVIL))
    meta_path.write_text(json.dumps(meta, indent=1))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    return subprocess.run(
        [sys.executable, "-m", "surefetch", *args], capture_output=True, text=True, env=env
    )


def test_a_library_hit_never_returns_bytes_other_than_the_hash_asked_for(
    server: ChaosServer, tmp_path: Path
) -> None:
    url = server.url("/tool.whl")
    _tamper(surefetch.fetch(url, sha256=GOOD_SHA, cache=tmp_path))
    result = surefetch.fetch(url, sha256=GOOD_SHA, cache=tmp_path)
    assert hashlib.sha256(result.read_bytes()).hexdigest() == GOOD_SHA
    assert server.request_count() == 2  # the wrong entry was replaced by a new download
    assert Cache(tmp_path).verify().sound


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_the_command_line_never_returns_bytes_other_than_the_hash_asked_for(
    server: ChaosServer, tmp_path: Path, flags: list[str]
) -> None:
    url = server.url("/tool.whl")
    _tamper(surefetch.fetch(url, sha256=GOOD_SHA, cache=tmp_path))
    done = _run("fetch", url, "--sha256", GOOD_SHA, "--cache-dir", str(tmp_path), *flags)
    assert done.returncode == 0, done.stderr
    if flags:
        record = json.loads(done.stdout)
        assert record["sha256"] == GOOD_SHA
        path = Path(record["path"])
    else:
        path = Path(done.stdout.strip())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == GOOD_SHA


def test_an_extracted_tree_keyed_by_a_hash_is_checked_too(tmp_path: Path) -> None:
    from archives import File, make_archive
    from surefetch._extract.archive import ArchiveFormat

    archive = make_archive({"pkg/a.txt": File(b"a")}, ArchiveFormat.TAR_GZ)
    digest = hashlib.sha256(archive).hexdigest()
    with ChaosServer(files={"/pkg.tar.gz": archive}) as server:
        url = server.url("/pkg.tar.gz")
        tree = surefetch.fetch(url, sha256=digest, cache=tmp_path, extract=True)
        meta_path = tree.parent / "entry.json"
        meta = json.loads(meta_path.read_text())
        meta["sha256"] = "0" * 64
        meta_path.write_text(json.dumps(meta))
        again = surefetch.fetch(url, sha256=digest, cache=tmp_path, extract=True)
        assert (again / "pkg" / "a.txt").read_bytes() == b"a"
        assert server.request_count() == 2


def test_cache_verify_finds_an_entry_that_disagrees_with_its_key(
    server: ChaosServer, tmp_path: Path
) -> None:
    _tamper(surefetch.fetch(server.url("/tool.whl"), sha256=GOOD_SHA, cache=tmp_path))
    report = Cache(tmp_path).verify()
    assert [c.key for c in report.corrupt] == [GOOD_SHA]
    assert "its key names sha256" in report.corrupt[0].reason
    done = _run("cache", "verify", "--cache-dir", str(tmp_path))
    assert done.returncode == 1 and "corrupt" in done.stdout
    assert _run("cache", "verify", "--fix", "--cache-dir", str(tmp_path)).returncode == 1
    assert Cache(tmp_path).verify().sound
