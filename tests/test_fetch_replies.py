"""Replies checked against what was asked, resumes without validators, and the sidecar.

Through real sockets: `RawServer` for replies no honest server sends (a
``206`` to a plain GET, totals that disagree), `ChaosServer` with
``validators=False`` for a server (or a proxy in front of it) that sends no
ETag and no Last-Modified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from raw_http import Answer, RawServer, Seen
from surefetch import DownloadError, IntegrityError, RetryEvent
from surefetch._cli.main import main
from surefetch._fetch.options import FetchArgs
from surefetch._fetch.sync_api import fetch_result
from surefetch.testing import ChaosServer, Fault, no_wait

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

TOTAL = 2097152  # the 2 MiB file of the report
DATA = random.Random(10).randbytes(TOTAL)
SHA = hashlib.sha256(DATA).hexdigest()
BIG = random.Random(11).randbytes(8 << 20)  # one aiohttp buffer is well under 1% of it
BIG_SHA = hashlib.sha256(BIG).hexdigest()


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SUREFETCH_HTTP_RETRIES", "SUREFETCH_OFFLINE", "SUREFETCH_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    with no_wait():
        yield


@pytest.fixture
def events() -> Iterator[list[RetryEvent]]:
    seen: list[RetryEvent] = []
    unsubscribe = surefetch.add_retry_hook(seen.append)
    yield seen
    unsubscribe()


def _result(url: str, cache: Path, **kwargs: object) -> surefetch.FetchResult:
    """The synchronous fetch's result, on the transport of the test's parameter."""
    return fetch_result(FetchArgs(url, cache=cache, **kwargs))  # type: ignore[arg-type]


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("downloads-v1/*/*"))


def _range(first: int, last: int, total: int | str, etag: str | None = '"e1"') -> Answer:
    headers = {"Content-Range": f"bytes {first}-{last}/{total}"}
    if etag is not None:
        headers["ETag"] = etag
    return Answer(206, headers, DATA[first : last + 1])


def _asked_from(seen: Seen) -> int:
    assert seen.range is not None and seen.range.startswith("bytes=")
    return int(seen.range.removeprefix("bytes=").rstrip("-"))


# A 206 to a request without Range ---------------------------------------------------


def test_a_206_to_a_plain_get_covering_part_of_the_file_is_continued(tmp_path: Path) -> None:
    def answer(seen: Seen, n: int) -> Answer:
        if seen.range is None:
            return _range(0, 99, TOTAL)
        return _range(_asked_from(seen), TOTAL - 1, TOTAL)

    with RawServer(answer) as server:
        result = _result(server.url("/f.bin"), tmp_path)
    assert result.path.read_bytes() == DATA
    assert result.size == TOTAL
    assert [seen.range for seen in server.requests] == [None, "bytes=100-"]
    assert server.requests[1].headers.get("if-range") == '"e1"'
    assert result.resumed_bytes == 100


def test_a_206_to_a_plain_get_with_the_whole_file_is_the_file(tmp_path: Path) -> None:
    with RawServer(lambda seen, n: _range(0, TOTAL - 1, TOTAL)) as server:
        result = _result(server.url("/f.bin"), tmp_path)
    assert result.path.read_bytes() == DATA
    assert result.attempts == 1


def test_a_206_to_a_plain_get_starting_elsewhere_is_refused(tmp_path: Path) -> None:
    def answer(seen: Seen, n: int) -> Answer:
        return _range(100, 199, TOTAL) if n == 0 else Answer(200, {}, DATA)

    with RawServer(answer) as server:
        result = _result(server.url("/f.bin"), tmp_path)
    assert result.path.read_bytes() == DATA
    assert [seen.range for seen in server.requests] == [None, None]


def test_a_206_that_never_completes_fails_and_caches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path))
    with RawServer(lambda seen, n: _range(0, 99, TOTAL, etag=None)) as server:
        code = main(["fetch", server.url("/f.bin"), "--retries", "2"])
        err = capsys.readouterr().err
        assert len(server.requests) == 3
    assert code == 1, err
    assert "Caused by: Request failed after 2 retries" in err
    assert f"ended at byte 100 of {TOTAL}" in err
    assert _entries(tmp_path) == []
    assert main(["cache", "verify"]) == 0
    assert "Checked 0 entries" in capsys.readouterr().out


@pytest.mark.parametrize("first", ["206 of the start", "200 cut short"])
def test_totals_that_disagree_restart_the_download(tmp_path: Path, first: str) -> None:
    other_total = TOTAL + 1000

    def answer(seen: Seen, n: int) -> Answer:
        if n == 0:
            if first == "206 of the start":
                return _range(0, 99, TOTAL)
            # Announces every byte, sends 100 and closes: a short body.
            return Answer(200, {"ETag": '"e1"', "Content-Length": str(TOTAL)}, DATA[:100])
        if n == 1:
            start = _asked_from(seen)
            return Answer(
                206,
                {"ETag": '"e1"', "Content-Range": f"bytes {start}-{other_total - 1}/{other_total}"},
                DATA[start:] + bytes(1000),
            )
        return Answer(200, {"ETag": '"e1"'}, DATA)

    with RawServer(answer) as server:
        result = _result(server.url("/f.bin"), tmp_path)
    assert result.path.read_bytes() == DATA
    assert [seen.range for seen in server.requests] == [None, "bytes=100-", None]


# Resuming without a validator --------------------------------------------------------


@pytest.fixture
def bare() -> Iterator[ChaosServer]:
    """A server that sends no ETag and no Last-Modified, like a proxy that strips them."""
    with ChaosServer(files={"/big.bin": BIG}, validators=False) as server:
        yield server


@pytest.mark.parametrize("known", ["sha256", "size"])
def test_a_reset_without_validators_resumes_when_the_content_is_checked(
    bare: ChaosServer, tmp_path: Path, known: str
) -> None:
    bare.script("/big.bin", [Fault.reset_after(len(BIG) // 2)])
    check: dict[str, object] = {"sha256": BIG_SHA} if known == "sha256" else {"size": len(BIG)}
    result = _result(bare.url("/big.bin"), tmp_path, **check)
    assert result.path.read_bytes() == BIG
    assert "etag" not in {k.lower() for k in bare.requests[0].headers}
    second = bare.requests[1]
    assert second.range_start is not None and second.range_start >= len(BIG) // 2
    assert "if-range" not in second.headers
    assert result.resumed_bytes >= len(BIG) // 2
    assert bare.bytes_sent("/big.bin") - len(BIG) < len(BIG) / 100


def test_without_validators_or_a_hash_the_download_restarts_and_says_why(
    bare: ChaosServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare.script("/big.bin", [Fault.reset_after(len(BIG) // 2)])
    with caplog.at_level(logging.INFO, logger="surefetch"):
        result = _result(bare.url("/big.bin"), tmp_path)
    assert result.path.read_bytes() == BIG
    assert bare.requests[1].range_start is None
    assert result.resumed_bytes == 0
    discarded = [r.getMessage() for r in caplog.records if "Discarding" in r.getMessage()]
    assert len(discarded) == 1, [r.getMessage() for r in caplog.records]
    assert f"Discarding {bare.requests[0].body_bytes_sent} bytes" in discarded[0]
    assert "no ETag or Last-Modified" in discarded[0] and "sha256" in discarded[0]


def test_a_file_changed_between_attempts_without_validators_restarts_once(
    bare: ChaosServer,
    tmp_path: Path,
    events: list[RetryEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    new = random.Random(12).randbytes(len(BIG))  # same size: only the hash can tell
    bare.script("/big.bin", [Fault.reset_after(len(BIG) // 2)])

    def change(event: RetryEvent) -> None:
        bare.add_file("/big.bin", new)

    unsubscribe = surefetch.add_retry_hook(change)
    try:
        with caplog.at_level(logging.INFO, logger="surefetch"):
            result = _result(bare.url("/big.bin"), tmp_path, sha256=hashlib.sha256(new).hexdigest())
    finally:
        unsubscribe()
    assert result.path.read_bytes() == new
    starts = [r.range_start for r in bare.requests]
    assert starts[0] is None and starts[1] is not None and starts[2] is None
    assert result.attempts == 3 and result.retries == 2 == len(events)
    discarded = [r.getMessage() for r in caplog.records if "Discarding" in r.getMessage()]
    assert len(discarded) == 1
    assert f"Discarding {len(BIG)} bytes" in discarded[0] and "sha256" in discarded[0]


def test_a_hash_that_fails_again_after_the_restart_is_an_integrity_error(
    bare: ChaosServer, tmp_path: Path
) -> None:
    bare.script("/big.bin", [Fault.reset_after(len(BIG) // 2)])
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(bare.url("/big.bin"), sha256="ab" * 32, cache=tmp_path, retries=5)
    assert isinstance(info.value.__cause__, IntegrityError)
    assert "Hash mismatch" in str(info.value.__cause__)
    assert [r.range_start is None for r in bare.requests] == [True, False, True]
    assert _entries(tmp_path) == []


def test_a_recorded_total_the_server_now_disagrees_with_restarts(
    bare: ChaosServer, tmp_path: Path
) -> None:
    bare.script("/big.bin", [Fault.reset_after(len(BIG) // 2)] + [Fault.status(404)] * 2)
    with pytest.raises(DownloadError):
        surefetch.fetch(bare.url("/big.bin"), size=len(BIG), cache=tmp_path, retries=0)
    assert len(list(tmp_path.glob("tmp/partial/*.part.json"))) == 1
    longer = BIG + b"more"
    bare.add_file("/big.bin", longer)
    bare.clear_scripts()
    bare.reset_log()
    # The same key (the URL's), so the same partial: its record says len(BIG) bytes.
    result = _result(bare.url("/big.bin"), tmp_path, size=len(longer))
    assert result.path.read_bytes() == longer
    assert [r.range_start is None for r in bare.requests] == [False, True]


# The partial's sidecar --------------------------------------------------------------


def test_the_sidecar_keeps_no_url_and_still_resumes(tmp_path: Path) -> None:
    with ChaosServer(files={"/big.bin": BIG}) as server:
        url = server.url("/big.bin") + "?token=t0psecret"
        server.script("/big.bin", [Fault.reset_after(len(BIG) // 2), Fault.status(404)])
        with pytest.raises(DownloadError):
            surefetch.fetch(url, sha256=BIG_SHA, cache=tmp_path, retries=0)
        (sidecar,) = tmp_path.glob("tmp/partial/*.part.json")
        text = sidecar.read_text()
        assert "t0psecret" not in text and "token" not in text and "/big.bin" not in text
        assert "127.0.0.1" not in text
        size = next(tmp_path.glob("tmp/partial/*.part")).stat().st_size
        server.clear_scripts()
        server.reset_log()
        result = _result(url, tmp_path, sha256=BIG_SHA)
        assert result.path.read_bytes() == BIG
        assert server.requests[0].range_start == size
        assert result.resumed_bytes == size


@pytest.mark.parametrize(
    "sidecar",
    [
        "old",
        '{"url_digest": 1, "etag": "\\"e\\"", "last_modified": null, "total": "many"}',
        "[1, 2]",
        "{not json",
    ],
)
def test_an_old_or_damaged_sidecar_restarts_without_a_crash(tmp_path: Path, sidecar: str) -> None:
    with ChaosServer(files={"/big.bin": BIG}) as server:
        url = server.url("/big.bin")
        server.script("/big.bin", [Fault.reset_after(len(BIG) // 2), Fault.status(404)])
        with pytest.raises(DownloadError):
            surefetch.fetch(url, sha256=BIG_SHA, cache=tmp_path, retries=0)
        (path,) = tmp_path.glob("tmp/partial/*.part.json")
        if sidecar == "old":
            # What earlier versions wrote: the wire URL itself, beside the rest.
            etag = json.loads(path.read_text())["etag"]
            sidecar = json.dumps(
                {"url": url, "etag": etag, "last_modified": None, "total": len(BIG)}
            )
        path.write_text(sidecar)
        server.clear_scripts()
        server.reset_log()
        result = _result(url, tmp_path, sha256=BIG_SHA)
    assert result.path.read_bytes() == BIG
    assert server.requests[0].range_start is None
    assert result.resumed_bytes == 0
