"""Freshness of URL-keyed entries end to end: the library and the CLI against a real server.

The server (`raw_http.RawServer`) answers each request with the reply the
test scripted, so the caching headers are exact and the requests it saw
(conditional or not) can be counted and read. Staleness comes from the
headers (``max-age=0``, dates in the past) or ``max_age=0``: no sleeps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from email.utils import formatdate
from pathlib import Path

import pytest

import surefetch
from raw_http import Answer, RawServer, Seen
from surefetch._cache.layout import BUCKET_DOWNLOADS, url_key
from surefetch._fetch.options import FetchArgs
from surefetch._fetch.sync_api import fetch_result
from surefetch.cache import Cache

BODY = b"version one\n" * 100
NEW = b"version two\n" * 50
LAST_MODIFIED = "Sat, 01 Jan 2000 00:00:00 GMT"


def ok(body: bytes = BODY, **headers: str) -> Answer:
    return Answer(200, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def not_modified(**headers: str) -> Answer:
    return Answer(304, {k.replace("_", "-"): v for k, v in headers.items()})


def script(*answers: Answer) -> RawServer:
    """A server giving ``answers`` in order (the last one again once they run out)."""
    return RawServer(lambda seen, n: answers[min(n, len(answers) - 1)])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str) -> Path:
    """The cache; every test runs on both transports of the synchronous API."""
    for name in list(os.environ):
        if name.startswith("SUREFETCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SUREFETCH_TRANSPORT", transport)
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache"


def result(url: str, cache: Path, **arguments: object) -> surefetch.FetchResult:
    """The synchronous fetch's result, on the transport of the test's parameter."""
    return fetch_result(FetchArgs(url, cache=cache, **arguments))  # type: ignore[arg-type]


def cli(
    *words: str, cache: Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``surefetch fetch WORDS`` in a real process."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SUREFETCH_") or k == "SUREFETCH_TRANSPORT"
    }
    environ.update(SUREFETCH_CACHE_DIR=str(cache), SUREFETCH_NO_RETRY_DELAY="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "surefetch", "fetch", *words],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd or cache.parent,
        timeout=60,
    )


def entry_json(cache: Path, url: str) -> dict[str, object]:
    key = url_key(url)
    data: dict[str, object] = json.loads(
        (cache / "downloads-v1" / key[:2] / key / "entry.json").read_bytes()
    )
    return data


def conditional(seen: Seen) -> dict[str, str]:
    return {k: v for k, v in seen.headers.items() if k.startswith("if-")}


# --- fresh: no request ------------------------------------------------------------------


def test_a_fresh_entry_is_a_hit_with_no_request(cache: Path) -> None:
    with script(ok(cache_control="max-age=3600", etag='"v1"')) as server:
        url = server.url("/latest.json")
        first = surefetch.fetch(url, cache=cache)
        assert surefetch.fetch(url, cache=cache) == first
        again = result(url, cache)
        done = cli(url, "--json", cache=cache)
        assert len(server.requests) == 1
    assert (again.from_cache, again.revalidated, again.stale, again.attempts) == (
        True,
        False,
        False,
        0,
    )
    record = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert (record["from_cache"], record["revalidated"], record["stale"]) == (True, False, False)
    assert record["path"] == str(first)


def test_last_modified_alone_gives_a_heuristic_lifetime(cache: Path) -> None:
    with script(ok(last_modified=LAST_MODIFIED)) as server:
        url = server.url("/old.txt")
        surefetch.fetch(url, cache=cache)
        surefetch.fetch(url, cache=cache)  # modified years ago: fresh for a day
        assert len(server.requests) == 1
    meta = entry_json(cache, url)
    assert meta["fresh_until"] == pytest.approx(float(meta["checked"]) + 86400)  # type: ignore[arg-type]


# --- stale: revalidated -------------------------------------------------------------------


def test_a_stale_entry_answered_with_304_is_a_hit_and_its_metadata_refreshed(cache: Path) -> None:
    with script(
        ok(cache_control="max-age=0", etag='"v1"', last_modified=LAST_MODIFIED),
        not_modified(cache_control="max-age=3600", etag='"v1"'),
    ) as server:
        url = server.url("/data.csv")
        first = surefetch.fetch(url, cache=cache)
        payload_before = os.stat(first)
        checked_before = entry_json(cache, url)["checked"]
        again = result(url, cache)
        assert conditional(server.requests[1]) == {
            "if-none-match": '"v1"',
            "if-modified-since": LAST_MODIFIED,
        }
        third = result(url, cache)  # fresh now, by the 304's max-age
        assert len(server.requests) == 2
    assert (again.from_cache, again.revalidated, again.stale, again.attempts) == (
        True,
        True,
        False,
        1,
    )
    assert again.path == first and first.read_bytes() == BODY
    payload_after = os.stat(first)
    assert (payload_after.st_ino, payload_after.st_mtime_ns) == (
        payload_before.st_ino,
        payload_before.st_mtime_ns,
    )  # the payload was not rewritten
    meta = entry_json(cache, url)
    assert meta["headers"] == {
        "etag": '"v1"',
        "last-modified": LAST_MODIFIED,
        "cache-control": "max-age=3600",
    }
    assert float(meta["checked"]) >= float(checked_before)  # type: ignore[arg-type]
    assert third.from_cache and not third.revalidated


def test_a_stale_entry_answered_with_200_is_replaced(cache: Path) -> None:
    with script(
        ok(cache_control="max-age=0", etag='"v1"'),
        ok(NEW, cache_control="max-age=3600", etag='"v2"'),
    ) as server:
        url = server.url("/data.csv")
        surefetch.fetch(url, cache=cache)
        again = result(url, cache)
        assert conditional(server.requests[1]) == {"if-none-match": '"v1"'}
        third = result(url, cache)
        assert len(server.requests) == 2
    assert (again.from_cache, again.revalidated) == (False, False)
    assert again.path.read_bytes() == NEW and again.sha256 == hashlib.sha256(NEW).hexdigest()
    assert third.from_cache and third.path.read_bytes() == NEW
    assert entry_json(cache, url)["headers"] == {"etag": '"v2"', "cache-control": "max-age=3600"}


def test_the_cli_revalidates_a_stale_entry_and_says_so_in_json(cache: Path) -> None:
    with script(ok(cache_control="no-cache", etag='W/"weak"'), not_modified()) as server:
        url = server.url("/latest.json")
        first = cli(url, "--json", cache=cache)
        second = cli(url, "--json", cache=cache)
        assert conditional(server.requests[1]) == {"if-none-match": 'W/"weak"'}
        assert len(server.requests) == 2
    assert second.returncode == 0, second.stderr
    before, after = json.loads(first.stdout), json.loads(second.stdout)
    assert (before["from_cache"], before["revalidated"], before["stale"]) == (False, False, False)
    assert (after["from_cache"], after["revalidated"], after["stale"]) == (True, True, False)
    assert after["path"] == before["path"] and after["attempts"] == 1


def test_expires_in_the_past_or_invalid_is_stale(cache: Path) -> None:
    now = formatdate(usegmt=True)
    for expires in ("Fri, 31 Dec 1999 00:00:00 GMT", "0", "not a date"):
        with script(ok(expires=expires, date=now, etag='"v1"'), not_modified()) as server:
            url = server.url(f"/e{len(expires)}.txt")
            surefetch.fetch(url, cache=cache)
            assert result(url, cache).revalidated, expires
            assert len(server.requests) == 2


def test_a_server_that_strips_validators(cache: Path) -> None:
    with script(ok(), ok(NEW)) as server:
        url = server.url("/plain.bin")
        surefetch.fetch(url, cache=cache)
        # No lifetime and no validator: nothing to check with short of a full
        # download, so the entry is kept until max_age says otherwise.
        assert result(url, cache).from_cache
        assert len(server.requests) == 1
        again = result(url, cache, max_age=0)
        assert conditional(server.requests[1]) == {}
    assert (again.from_cache, again.path.read_bytes()) == (False, NEW)


def test_a_304_to_an_unconditional_request_is_an_error_not_a_hit(cache: Path) -> None:
    with script(not_modified(etag='"v1"')) as server:
        url = server.url("/nothing.bin")
        with pytest.raises(surefetch.DownloadError) as caught:
            surefetch.fetch(url, cache=cache)
        done = cli(url, cache=cache)
    assert "304" in str(caught.value.__cause__)
    assert Cache(cache).lookup(BUCKET_DOWNLOADS, url_key(url)) is None
    assert done.returncode == 1 and "304" in done.stderr and done.stdout == ""


# --- never revalidated -----------------------------------------------------------------------


def test_immutable_and_content_keyed_entries_are_never_revalidated(cache: Path) -> None:
    with script(ok(cache_control="max-age=0, immutable", etag='"v1"')) as server:
        url = server.url("/immutable.whl")
        surefetch.fetch(url, cache=cache)
        assert result(url, cache, max_age=0).from_cache
        assert cli(url, "--max-age", "0", cache=cache).returncode == 0
        assert len(server.requests) == 1
    sha = hashlib.sha256(BODY).hexdigest()
    with script(ok(cache_control="no-cache", etag='"v1"')) as server:
        url = server.url("/pinned.whl")
        surefetch.fetch(url, cache=cache, sha256=sha)
        assert result(url, cache, sha256=sha, max_age=0).from_cache
        assert cli(url, "--sha256", sha, "--max-age", "0", cache=cache).returncode == 0
        assert len(server.requests) == 1


# --- no-store ------------------------------------------------------------------------------


def test_no_store_is_given_to_the_caller_but_not_cached(cache: Path) -> None:
    with script(
        ok(cache_control="max-age=0", etag='"v1"'), ok(NEW, cache_control="no-store")
    ) as server:
        url = server.url("/secret.json")
        surefetch.fetch(url, cache=cache)
        got = result(url, cache)
        done = cli(url, cache=cache)
        assert len(server.requests) == 3  # nothing to answer from
    assert not got.from_cache and got.path.read_bytes() == NEW
    assert got.path.is_relative_to(cache / "tmp") and got.path.name == "secret.json"
    assert Cache(cache).lookup(BUCKET_DOWNLOADS, url_key(url)) is None  # the stale one went too
    assert done.returncode == 0 and Path(done.stdout.strip()).read_bytes() == NEW
    assert "no-store" in done.stderr


# --- offline -----------------------------------------------------------------------------


def test_offline_serves_a_stale_entry_and_says_it_is_stale(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with script(ok(cache_control="max-age=0", etag='"v1"')) as server:
        url = server.url("/latest.json")
        path = surefetch.fetch(url, cache=cache)
        with caplog.at_level(logging.WARNING, logger="surefetch"):
            assert surefetch.fetch(url, cache=cache, offline=True) == path
        got = result(url, cache, offline=True)
        done = cli(url, "--offline", "--json", cache=cache)
        plain = cli(url, cache=cache, SUREFETCH_OFFLINE="1")
        assert len(server.requests) == 1
    assert any("stale" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert (got.from_cache, got.stale, got.revalidated) == (True, True, False)
    record = json.loads(done.stdout)
    assert (record["from_cache"], record["stale"], record["path"]) == (True, True, str(path))
    assert "stale" in done.stderr and done.returncode == 0
    assert plain.stdout.strip() == str(path) and "stale" in plain.stderr


# --- max_age -----------------------------------------------------------------------------


def test_max_age_from_the_flag_the_variable_and_a_config_file(cache: Path, tmp_path: Path) -> None:
    with script(ok(cache_control="max-age=3600", etag='"v1"'), not_modified(etag='"v1"')) as server:
        url = server.url("/latest.json")
        assert cli(url, cache=cache).returncode == 0
        assert cli(url, cache=cache).returncode == 0
        assert len(server.requests) == 1  # fresh for an hour by the server
        assert cli(url, "--max-age", "0", cache=cache).returncode == 0
        assert len(server.requests) == 2
        assert cli(url, cache=cache, SUREFETCH_MAX_AGE="0").returncode == 0
        assert len(server.requests) == 3
        project = tmp_path / "project"
        project.mkdir()
        (project / "surefetch.toml").write_text("max_age = 0\n")
        assert cli(url, cache=cache, cwd=project).returncode == 0
        assert len(server.requests) == 4
        assert all(conditional(seen) == {"if-none-match": '"v1"'} for seen in server.requests[1:])
        # The flag wins over the variable and the file, both ways.
        assert cli(url, "--max-age", "60", cache=cache, cwd=project).returncode == 0
        assert len(server.requests) == 4
        bad = cli(url, "--max-age", "soon", cache=cache)
    assert bad.returncode == 2 and "--max-age='soon' is not valid" in bad.stderr


def test_max_age_overrides_a_server_that_says_stale(cache: Path) -> None:
    with script(ok(cache_control="no-cache", etag='"v1"')) as server:
        url = server.url("/slow-changing.bin")
        surefetch.fetch(url, cache=cache)
        assert result(url, cache, max_age=3600).from_cache
        assert cli(url, "--max-age", "3600", cache=cache).returncode == 0
        assert len(server.requests) == 1


# --- single flight across processes ----------------------------------------------------------


def test_processes_revalidating_one_stale_entry_ask_the_server_once(cache: Path) -> None:
    with script(
        ok(cache_control="max-age=0", etag='"v1"'),
        not_modified(cache_control="max-age=3600"),
    ) as server:
        url = server.url("/shared.json")
        surefetch.fetch(url, cache=cache)
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SUREFETCH_") or k == "SUREFETCH_TRANSPORT"
        }
        environ.update(SUREFETCH_CACHE_DIR=str(cache), SUREFETCH_NO_RETRY_DELAY="1")
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "surefetch", "fetch", url, "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environ,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=60) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
        # One conditional request; the others found the refreshed entry under the lock.
        assert len(server.requests) == 2
    records = [json.loads(out) for out, _ in outputs]
    assert sum(r["revalidated"] for r in records) == 1
    assert all(r["from_cache"] and not r["stale"] for r in records)
