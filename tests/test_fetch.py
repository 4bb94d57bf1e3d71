"""The download pipeline through the chaos server: real sockets, scripted faults."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from surefetch import DownloadError, IntegrityError, OfflineError, RetriesExhausted, RetryEvent
from surefetch._fetch.options import FetchArgs
from surefetch._fetch.sync_api import fetch_result
from surefetch.testing import ChaosServer, Fault, no_wait

# The protocol matrix: every test runs on both transports of the synchronous API.
pytestmark = pytest.mark.usefixtures("transport")

SIZE = 8 << 20  # big enough that one aiohttp buffer is well under 1% of it
DATA = random.Random(1).randbytes(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()
SMALL = b"hello, surefetch\n" * 100


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SUREFETCH_HTTP_RETRIES", "SUREFETCH_OFFLINE", "SUREFETCH_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    with no_wait():
        yield


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/data.bin": DATA, "/small.txt": SMALL}) as chaos:
        yield chaos


@pytest.fixture
def events() -> Iterator[list[RetryEvent]]:
    seen: list[RetryEvent] = []
    unsubscribe = surefetch.add_retry_hook(seen.append)
    yield seen
    unsubscribe()


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("downloads-v1/*/*"))


def _result(url: str, cache: Path, **kwargs: object) -> surefetch.FetchResult:
    """The synchronous fetch's result, on the transport of the test's parameter."""
    return fetch_result(FetchArgs(url, cache=cache, **kwargs))  # type: ignore[arg-type]


def test_clean_download_is_cached_and_verified(server: ChaosServer, tmp_path: Path) -> None:
    path = surefetch.fetch(server.url("/data.bin"), sha256=SHA, cache=tmp_path)
    assert path.read_bytes() == DATA
    assert path.name == "data.bin"
    assert server.request_count() == 1
    again = surefetch.fetch(server.url("/data.bin"), sha256=SHA, cache=tmp_path)
    assert again == path
    assert server.request_count() == 1  # the second one was a cache hit


def test_async_fetch(server: ChaosServer, tmp_path: Path) -> None:
    path = asyncio.run(surefetch.afetch(server.url("/small.txt"), cache=tmp_path))
    assert path.read_bytes() == SMALL


FAULTS = {
    "reset": Fault.reset_after(SIZE // 2),
    "truncated": Fault.close_after(SIZE // 3),
    "status_500": Fault.status(500),
    "status_502": Fault.status(502),
    "status_503": Fault.status(503),
    "status_408": Fault.status(408),
    "retry_after_429": Fault.retry_after(2, status=429),
    "retry_after_503": Fault.retry_after(3, status=503),
    "drop": Fault.drop(),
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_fault_alone_is_survived(
    server: ChaosServer, tmp_path: Path, name: str, mode: str
) -> None:
    server.script("/data.bin", [FAULTS[name]])
    url = server.url("/data.bin")
    if mode == "sync":
        path = surefetch.fetch(url, sha256=SHA, cache=tmp_path)
        attempts = server.request_count()
    else:
        result = _result(url, tmp_path, sha256=SHA)
        path = result.path
        attempts = result.attempts
        assert result.retries == 1
    assert path.read_bytes() == DATA
    assert server.request_count() == attempts == 2


def test_stall_times_out_and_resumes(
    server: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUREFETCH_HTTP_TIMEOUT", "0.3")
    server.script("/data.bin", [Fault.stall(60, after=SIZE // 4)])
    result = _result(server.url("/data.bin"), tmp_path, sha256=SHA)
    assert result.path.read_bytes() == DATA
    assert result.attempts == server.request_count() == 2
    assert result.resumed_bytes > 0


def test_fault_sequence_is_survived(
    server: ChaosServer, tmp_path: Path, events: list[RetryEvent]
) -> None:
    server.script(
        "/data.bin",
        [
            Fault.reset_after(SIZE // 5),
            Fault.status(503),
            Fault.close_after(1000),
            Fault.retry_after(1, status=429),
            Fault.drop(),
            Fault.reset_after(SIZE // 10),
        ],
    )
    result = _result(server.url("/data.bin"), tmp_path, sha256=SHA, retries=6)
    assert result.path.read_bytes() == DATA
    assert result.attempts == server.request_count() == 7
    assert result.retries == len(events) == 6


def test_four_failures_with_three_retries_fail_after_four_requests(
    server: ChaosServer, tmp_path: Path
) -> None:
    server.script("/data.bin", [Fault.status(503)] * 2 + [Fault.reset_after(100)] * 2)
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(server.url("/data.bin"), cache=tmp_path, retries=3)
    assert server.request_count() == 4
    cause = info.value.__cause__
    assert isinstance(cause, RetriesExhausted)
    assert str(cause).startswith("Request failed after 3 retries in ")
    assert len(cause.attempts) == 4
    assert _entries(tmp_path) == []


def test_reset_mid_body_resumes_and_resends_under_one_percent(
    server: ChaosServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("/data.bin", [Fault.reset_after(SIZE // 2), Fault.reset_after(SIZE // 4)])
    with caplog.at_level(logging.INFO, logger="surefetch"):
        result = _result(server.url("/data.bin"), tmp_path, sha256=SHA)
    assert result.path.read_bytes() == DATA
    assert server.request_count() == 3
    resent = server.bytes_sent("/data.bin") - SIZE
    assert 0 <= resent < SIZE / 100
    ranges = [r.headers.get("range") for r in server.requests]
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=")
    assert all(r.headers.get("if-range") for r in server.requests[1:])
    assert result.resumed_bytes > SIZE // 2
    assert any("Resuming" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "second", [Fault.ignore_range(), Fault.change_etag(), Fault.wrong_content_range()]
)
def test_a_reply_that_does_not_continue_the_partial_restarts_cleanly(
    server: ChaosServer, tmp_path: Path, second: Fault
) -> None:
    server.script("/data.bin", [Fault.reset_after(SIZE // 2), second])
    result = _result(server.url("/data.bin"), tmp_path, sha256=SHA)
    assert result.path.read_bytes() == DATA


def test_retry_after_is_waited_for(server: ChaosServer, tmp_path: Path) -> None:
    from surefetch._retry.budget import enter_no_wait, exit_no_wait

    server.script("/small.txt", [Fault.retry_after(1, status=429)])
    exit_no_wait()
    try:
        result = _result(server.url("/small.txt"), tmp_path)
    finally:
        enter_no_wait()
    assert result.elapsed_s >= 1.0
    assert result.attempts == 2


def test_retry_after_wait_is_reported(
    server: ChaosServer, tmp_path: Path, events: list[RetryEvent]
) -> None:
    server.script("/small.txt", [Fault.retry_after(7, status=503)])
    surefetch.fetch(server.url("/small.txt"), cache=tmp_path)
    assert [(e.wait, e.reason) for e in events] == [(7.0, "HTTP 503, Retry-After 7s")]


def test_mirror_takes_over(tmp_path: Path) -> None:
    with (
        ChaosServer(files={"/f.bin": DATA}) as primary,
        ChaosServer(files={"/f.bin": DATA}) as mirror,
    ):
        primary.script("/f.bin", [Fault.status(503)] * 10)
        result = _result(
            primary.url("/f.bin"), tmp_path, sha256=SHA, mirrors=[mirror.url("/f.bin")], retries=2
        )
        assert result.path.read_bytes() == DATA
        assert primary.request_count() == 3
        assert mirror.request_count() == 1


def test_missing_file_on_primary_goes_to_mirror(server: ChaosServer, tmp_path: Path) -> None:
    path = surefetch.fetch(
        server.url("/missing.bin"), mirrors=[server.url("/data.bin")], sha256=SHA, cache=tmp_path
    )
    assert path.read_bytes() == DATA


def test_final_error_names_every_url_tried(server: ChaosServer, tmp_path: Path) -> None:
    urls = [server.url("/gone-1"), server.url("/gone-2"), server.url("/gone-3")]
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(urls[0], mirrors=urls[1:], cache=tmp_path)
    message = str(info.value)
    assert all(url in message for url in urls)
    assert "HTTP 404" in message


def test_hash_mismatch_caches_nothing(server: ChaosServer, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(server.url("/small.txt"), sha256=wrong, cache=tmp_path)
    cause = info.value.__cause__
    assert isinstance(cause, IntegrityError)
    assert wrong in str(cause) and hashlib.sha256(SMALL).hexdigest() in str(cause)
    assert server.request_count() == 1  # a mismatch is not retried
    assert not any(p.is_file() for p in tmp_path.glob("downloads-v1/**/*"))
    assert not any(tmp_path.glob("tmp/partial/*.part"))


def test_size_mismatch_is_an_integrity_error(server: ChaosServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        asyncio.run(surefetch.afetch(server.url("/small.txt"), size=5, cache=tmp_path))
    assert isinstance(info.value.__cause__, IntegrityError)
    assert "expected 5 bytes" in str(info.value.__cause__)


def test_offline_mode_uses_the_cache_only(
    server: ChaosServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.url("/small.txt")
    with pytest.raises(OfflineError, match="offline"):
        surefetch.fetch(url, cache=tmp_path, offline=True)
    assert server.request_count() == 0
    path = surefetch.fetch(url, cache=tmp_path)
    monkeypatch.setenv("SUREFETCH_OFFLINE", "1")
    assert surefetch.fetch(url, cache=tmp_path) == path
    assert server.request_count() == 1


def test_refresh_downloads_again(server: ChaosServer, tmp_path: Path) -> None:
    url = server.url("/small.txt")
    first = surefetch.fetch(url, cache=tmp_path)
    second = surefetch.fetch(url, cache=tmp_path, refresh=True)
    assert second.read_bytes() == SMALL
    assert first.parent.parent == second.parent.parent
    assert server.request_count() == 2


def test_sync_fetch_inside_a_running_event_loop(server: ChaosServer, tmp_path: Path) -> None:
    async def main() -> Path:
        return surefetch.fetch(server.url("/small.txt"), cache=tmp_path)

    assert asyncio.run(main()).read_bytes() == SMALL


def test_fetch_many(server: ChaosServer, tmp_path: Path) -> None:
    for i in range(20):
        server.add_file(f"/f{i}", bytes([i]) * 1000)
    server.script("/f3", [Fault.reset_after(10)])
    server.script("/f7", [Fault.status(503)])
    paths = surefetch.fetch_many(
        [server.url(f"/f{i}") for i in range(20)], cache=tmp_path, concurrency=4
    )
    assert [p.read_bytes() for p in paths] == [bytes([i]) * 1000 for i in range(20)]
    assert server.request_count() == 22


def test_fetch_many_reports_failures_after_caching_the_rest(
    server: ChaosServer, tmp_path: Path
) -> None:
    urls = [server.url("/small.txt"), server.url("/missing"), server.url("/data.bin")]
    with pytest.raises(surefetch.FetchManyError) as info:
        surefetch.fetch_many(urls, cache=tmp_path)
    assert list(info.value.errors) == [urls[1]]
    assert surefetch.fetch(urls[2], cache=tmp_path, offline=True).read_bytes() == DATA


def test_fetch_many_accepts_requests_with_hashes(server: ChaosServer, tmp_path: Path) -> None:
    request = surefetch.FetchRequest(server.url("/data.bin"), sha256=SHA)
    assert surefetch.fetch_many([request], cache=tmp_path)[0].read_bytes() == DATA


def test_fetch_many_keeps_at_most_concurrency_connections_and_reuses_them(
    server: ChaosServer, tmp_path: Path
) -> None:
    for i in range(40):
        server.add_file(f"/k{i}", bytes([i]) * 3000)
    paths = surefetch.fetch_many(
        [server.url(f"/k{i}") for i in range(40)], cache=tmp_path, concurrency=4
    )
    assert [p.read_bytes() for p in paths] == [bytes([i]) * 3000 for i in range(40)]
    records = server.requests
    assert len(records) == 40
    assert len({record.connection for record in records}) <= 4


def test_fetch_many_deadline_ends_only_the_download_that_passes_it(
    server: ChaosServer, tmp_path: Path
) -> None:
    # Each download has the policy's deadline of its own, counted from its start.
    server.script("/data.bin", [Fault.stall(120, after=SIZE // 4)])
    urls = [server.url("/small.txt"), server.url("/data.bin")]
    policy = surefetch.RetryPolicy(retries=3, deadline=2.0)
    with pytest.raises(surefetch.FetchManyError) as info:
        surefetch.fetch_many(urls, cache=tmp_path, policy=policy)
    assert list(info.value.errors) == [urls[1]]
    assert "the deadline of 2s passed" in str(info.value.errors[urls[1]])
    assert surefetch.fetch(urls[0], cache=tmp_path, offline=True).read_bytes() == SMALL
    assert [p.stat().st_size >= SIZE // 4 for p in tmp_path.glob("tmp/partial/*.part")] == [True]


def test_fetch_many_offline_serves_what_is_cached_and_names_what_is_not(
    server: ChaosServer, tmp_path: Path
) -> None:
    small, data = server.url("/small.txt"), server.url("/data.bin")
    surefetch.fetch(small, cache=tmp_path)
    with pytest.raises(surefetch.FetchManyError) as info:
        surefetch.fetch_many([small, data], cache=tmp_path, offline=True)
    assert list(info.value.errors) == [data]
    assert isinstance(info.value.errors[data], OfflineError)
    assert surefetch.fetch_many([small], cache=tmp_path, offline=True)[0].read_bytes() == SMALL
    assert server.request_count() == 1


def test_fetch_many_of_files_and_an_archive(server: ChaosServer, tmp_path: Path) -> None:
    from archives import File, make_archive
    from surefetch._extract.archive import ArchiveFormat

    archive = make_archive({"inner.txt": File(b"inside")}, ArchiveFormat.TAR_GZ)
    server.add_file("/a.tar.gz", archive)
    requests = [
        surefetch.FetchRequest(server.url("/small.txt")),
        surefetch.FetchRequest(server.url("/a.tar.gz"), extract=True),
    ]
    paths = surefetch.fetch_many(requests, cache=tmp_path)
    assert paths[0].read_bytes() == SMALL
    assert (paths[1] / "inner.txt").read_bytes() == b"inside"


def test_credentials_are_sent_but_never_shown(
    server: ChaosServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url("/data.bin", userinfo="alice:s3cretpass") + "?token=t0psecret"
    server.script("/data.bin", [Fault.reset_after(1000)] + [Fault.status(503)] * 3)
    with caplog.at_level(logging.INFO, logger="surefetch"), pytest.raises(DownloadError) as info:
        surefetch.fetch(url, cache=tmp_path, retries=3)
    assert server.requests[0].headers.get("authorization", "").startswith("Basic ")
    from surefetch._cli.output import format_error
    from surefetch._url import Redactor

    shown = format_error(info.value, redactor=Redactor([url]), verbose=True)
    text = shown + "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cretpass" not in text and "t0psecret" not in text
    assert "Request failed after 3 retries" in shown


def test_partial_left_by_an_earlier_process_is_resumed(server: ChaosServer, tmp_path: Path) -> None:
    # An earlier attempt was cut off: its partial and validator are on disk.
    server.script("/data.bin", [Fault.reset_after(SIZE // 2)] + [Fault.status(404)] * 4)
    with pytest.raises(DownloadError):
        surefetch.fetch(server.url("/data.bin"), sha256=SHA, cache=tmp_path, retries=0)
    partials = list(tmp_path.glob("tmp/partial/*.part"))
    assert len(partials) == 1
    partial_size = partials[0].stat().st_size
    assert partial_size > 0
    server.clear_scripts()
    server.reset_log()
    result = _result(server.url("/data.bin"), tmp_path, sha256=SHA)
    assert result.path.read_bytes() == DATA
    assert server.requests[0].range_start == partial_size
    assert server.bytes_sent("/data.bin") < SIZE // 2 + SIZE // 100


def test_deadline_bounds_the_whole_fetch(server: ChaosServer, tmp_path: Path) -> None:
    policy = surefetch.RetryPolicy(retries=10, deadline=5.0, jitter=0.0)
    server.script("/small.txt", [Fault.status(503)] * 10)
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(server.url("/small.txt"), cache=tmp_path, policy=policy)
    assert isinstance(info.value.__cause__, RetriesExhausted)
    assert server.request_count() == 2  # waits 2 s, then 4 s would cross 5 s


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/x", "scheme 'ftp'"),
        ("not a url", "starts with http:// or https://"),
        ("http:///x", "no host"),
        ("http://example.org:99999/x", "not valid"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(surefetch.ConfigError, match=message):
        surefetch.fetch(url, cache=tmp_path)


def test_bad_hash_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(surefetch.ConfigError, match="64 hexadecimal"):
        surefetch.fetch("http://127.0.0.1:9/x", sha256="abc", cache=tmp_path)


def test_bad_timeout_setting_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUREFETCH_CONNECT_TIMEOUT", "soon")
    with pytest.raises(surefetch.ConfigError, match="SUREFETCH_CONNECT_TIMEOUT"):
        surefetch.fetch("http://127.0.0.1:9/x", cache=tmp_path)


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with ChaosServer() as gone:
        url = gone.url("/x")
    with pytest.raises(DownloadError) as info:
        surefetch.fetch(url, cache=tmp_path, retries=2)
    assert "Request failed after 2 retries" in str(info.value.__cause__)
    assert _entries(tmp_path) == []


def test_deadline_stops_an_attempt_in_the_middle_of_a_body(
    server: ChaosServer, tmp_path: Path
) -> None:
    # A stall far longer than the deadline: only the deadline can end it.
    server.script("/data.bin", [Fault.stall(120, after=SIZE // 4)])
    policy = surefetch.RetryPolicy(retries=3, deadline=3.0)
    with pytest.raises(DownloadError, match=r"the deadline of 3s passed"):
        surefetch.fetch(server.url("/data.bin"), cache=tmp_path, policy=policy)
    assert _entries(tmp_path) == []
    partials = list(tmp_path.glob("tmp/partial/*.part"))
    assert len(partials) == 1
    assert partials[0].stat().st_size >= SIZE // 4  # kept for a later resume


def test_one_options_value_carries_the_arguments_of_every_fetch_function() -> None:
    import inspect
    from dataclasses import fields

    from surefetch._fetch.options import FetchArgs

    names = [f.name for f in fields(FetchArgs)]
    for function in (surefetch.fetch, surefetch.afetch, surefetch.afetch_result):
        parameters = inspect.signature(function).parameters
        assert list(parameters) == names, function.__name__
        assert all(
            p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:]
        ), function.__name__
