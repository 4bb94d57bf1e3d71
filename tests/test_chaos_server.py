"""The chaos server, observed with standard-library clients over real loopback sockets."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import surefetch.testing._chaos as chaos_module
from surefetch.testing._chaos import ChaosServer, Fault

DATA = random.Random(0).randbytes(300_000)
SIZE = len(DATA)
OLD_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/a.bin": DATA, "/empty": b""}) as srv:
        yield srv


def get(
    srv: ChaosServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw(
    srv: ChaosServer, request: bytes, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes, OSError | None]:
    """Send *request* and read until the server ends the connection.

    Returns the status, the headers (lower-case names), every byte after the head,
    and the error that ended the read (None for a clean EOF).
    """
    data = bytearray()
    error: OSError | None = None
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(1 << 16):
                data += chunk
        except OSError as exc:
            error = exc
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    if not head:
        return 0, {}, b"", error
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body, error


def req(path: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Connection: close", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- clean serving ----------------------------------------------------------------------


def test_clean_get_has_body_and_headers(server: ChaosServer) -> None:
    status, headers, body = get(server, "/a.bin")
    assert status == 200
    assert body == DATA
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/octet-stream"
    etag = headers["ETag"]
    assert etag.startswith('"')  # strong
    assert etag.endswith('"')
    assert headers["Last-Modified"].endswith("GMT")
    # Same content, same validators.
    _, again, _ = get(server, "/a.bin")
    assert (again["ETag"], again["Last-Modified"]) == (etag, headers["Last-Modified"])


def test_etag_follows_content(server: ChaosServer) -> None:
    server.add_file("/b.bin", DATA)
    server.add_file("/c.bin", DATA[:-1])
    tags = {get(server, p)[1]["ETag"] for p in ("/a.bin", "/b.bin", "/c.bin")}
    assert len(tags) == 2


def test_head_sends_headers_only(server: ChaosServer) -> None:
    status, headers, body = get(server, "/a.bin", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(SIZE)
    assert server.requests[-1].body_bytes_sent == 0


def test_missing_file_and_other_methods(server: ChaosServer) -> None:
    assert get(server, "/nope")[0] == 404
    status, headers, _ = get(server, "/a.bin", method="DELETE")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_empty_file(server: ChaosServer) -> None:
    status, headers, body = get(server, "/empty")
    assert (status, body, headers["Content-Length"]) == (200, b"", "0")


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=1000-", 1000, SIZE - 1),
        ("bytes=-50", SIZE - 50, SIZE - 1),
        ("bytes=-999999999", 0, SIZE - 1),
        ("bytes=5-999999999", 5, SIZE - 1),
        ("bytes=0-0", 0, 0),
    ],
)
def test_single_ranges(server: ChaosServer, spec: str, start: int, end: int) -> None:
    status, headers, body = get(server, "/a.bin", {"Range": spec})
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert headers["Content-Length"] == str(end - start + 1)
    assert body == DATA[start : end + 1]
    assert server.requests[-1].range_start == start


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=9-2", "items=0-5", "bytes=x-"])
def test_multi_or_malformed_range_answers_in_full(server: ChaosServer, spec: str) -> None:
    status, headers, body = get(server, "/a.bin", {"Range": spec})
    assert (status, body) == (200, DATA)
    assert "Content-Range" not in headers


@pytest.mark.parametrize(
    ("path", "spec", "size"),
    [("/a.bin", f"bytes={SIZE}-", SIZE), ("/a.bin", "bytes=-0", SIZE), ("/empty", "bytes=0-", 0)],
)
def test_unsatisfiable_range_is_416(server: ChaosServer, path: str, spec: str, size: int) -> None:
    status, headers, body = get(server, path, {"Range": spec})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"
    assert body == b""


def test_if_range(server: ChaosServer) -> None:
    _, headers, _ = get(server, "/a.bin")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    cases = [
        (etag, 206),
        ('"something-else"', 200),
        ("W/" + etag, 200),  # If-Range needs a strong match
        (modified, 206),
        (OLD_DATE, 200),
        ("not a date", 200),
    ]
    for value, expected in cases:
        status, _, body = get(server, "/a.bin", {"Range": "bytes=100-", "If-Range": value})
        assert status == expected, value
        assert body == (DATA[100:] if expected == 206 else DATA)


def test_without_validators_ranges_are_served_but_nothing_can_guard_them() -> None:
    with ChaosServer(files={"/a.bin": DATA}, validators=False) as bare:
        status, headers, body = get(bare, "/a.bin")
        assert (status, body) == (200, DATA)
        assert "ETag" not in headers and "Last-Modified" not in headers
        status, headers, body = get(bare, "/a.bin", {"Range": "bytes=100-"})
        assert (status, body) == (206, DATA[100:])
        assert "ETag" not in headers
        status, _, body = get(bare, "/a.bin", {"Range": "bytes=100-", "If-Range": OLD_DATE})
        assert (status, body) == (200, DATA)
        status, _, body = get(bare, "/a.bin", {"If-None-Match": "*"})
        assert (status, body) == (200, DATA)


def test_conditional_get_gives_304(server: ChaosServer) -> None:
    _, headers, _ = get(server, "/a.bin")
    status, _, body = get(server, "/a.bin", {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    assert get(server, "/a.bin", {"If-None-Match": '"other"'})[0] == 200


def test_keep_alive_reuses_one_connection(server: ChaosServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for spec in ("bytes=0-9", "bytes=10-19", "bytes=20-"):
            conn.request("GET", "/a.bin", headers={"Range": spec})
            resp = conn.getresponse()
            assert resp.status == 206
            resp.read()
        conn.request("HEAD", "/a.bin")
        conn.getresponse().read()
    finally:
        conn.close()
    assert len({r.connection for r in server.requests}) == 1
    assert server.request_count() == 4


def test_connection_close_and_http10_end_the_connection(server: ChaosServer) -> None:
    status, headers, body, error = raw(server, req("/a.bin"))
    assert (status, body, error) == (200, DATA, None)
    assert headers["connection"] == "close"
    status, _, body, error = raw(server, b"GET /a.bin HTTP/1.0\r\n\r\n")
    assert (status, body, error) == (200, DATA, None)


def test_pipelined_requests_and_request_bodies(server: ChaosServer) -> None:
    two = (
        b"POST /a.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /a.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\nConnection: close\r\n\r\n"
    )
    status, _, rest, error = raw(server, two)
    assert (status, error) == (405, None)
    assert rest.endswith(b"\r\n\r\n" + DATA[:4])
    assert [r.status for r in server.requests] == [405, 206]


def test_garbage_request_is_400(server: ChaosServer) -> None:
    status, _, _, _ = raw(server, b"NONSENSE\r\n\r\n")
    assert status == 400


def test_absolute_form_and_userinfo(server: ChaosServer) -> None:
    url = server.url("/a.bin", userinfo="user:secret")
    assert url == f"http://user:secret@127.0.0.1:{server.port}/a.bin"
    status, _, body, _ = raw(server, req(url, "Authorization: Basic dXNlcjpzZWNyZXQ="))
    assert (status, body) == (200, DATA)
    record = server.requests[-1]
    assert record.path == "/a.bin"
    assert record.headers["authorization"] == "Basic dXNlcjpzZWNyZXQ="


# -- faults ------------------------------------------------------------------------------


def test_reset_after_sends_exactly_n_bytes_then_rst(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.reset_after(1000)])
    status, headers, body, error = raw(server, req("/a.bin"))
    assert status == 200
    assert headers["content-length"] == str(SIZE)
    assert body == DATA[:1000]
    assert isinstance(error, ConnectionResetError)
    assert server.requests[-1].body_bytes_sent == 1000
    # The queue is empty again: clean service.
    assert get(server, "/a.bin")[2] == DATA


def test_reset_after_with_http_client(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.reset_after(5000)])
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        get(server, "/a.bin")


def test_reset_after_applies_to_a_range_response(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.reset_after(10)])
    status, headers, body, error = raw(server, req("/a.bin", "Range: bytes=500-"))
    assert status == 206
    assert headers["content-range"] == f"bytes 500-{SIZE - 1}/{SIZE}"
    assert body == DATA[500:510]
    assert isinstance(error, ConnectionResetError)
    assert server.requests[-1].range_start == 500


def test_close_after_truncates_with_a_clean_eof(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.close_after(777)])
    status, headers, body, error = raw(server, req("/a.bin"))
    assert (status, headers["content-length"], body, error) == (200, str(SIZE), DATA[:777], None)
    server.script("/a.bin", [Fault.close_after(10)])
    with pytest.raises(http.client.IncompleteRead) as info:
        get(server, "/a.bin")
    assert info.value.partial == DATA[:10]


def test_stall_sends_some_then_nothing_then_closes(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.stall(0.3, after=100)])
    status, _, body, error = raw(server, req("/a.bin"))
    assert (status, body, error) == (200, DATA[:100], None)


def test_stall_times_out_a_client_and_stop_is_prompt() -> None:
    srv = ChaosServer(files={"/a.bin": DATA}).start()
    try:
        srv.script("/a.bin", [Fault.stall(60, after=50)])
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        sock.sendall(req("/a.bin"))
        received = bytearray()
        while not received.endswith(b"\r\n\r\n" + DATA[:50]):
            received += sock.recv(1 << 16)
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 1.0
        sock.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""  # the server closed its end
        sock.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_status_fault(server: ChaosServer, method: str) -> None:
    server.script("/a.bin", [Fault.status(503, headers={"X-Why": "busy"}, body=b"later")])
    status, headers, body = get(server, "/a.bin", method=method)
    assert status == 503
    assert headers["X-Why"] == "busy"
    assert headers["Content-Length"] == "5"
    assert body == (b"later" if method == "GET" else b"")


def test_retry_after_faults(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.retry_after(2), Fault.retry_after(OLD_DATE, status=503)])
    status, headers, _ = get(server, "/a.bin")
    assert (status, headers["Retry-After"]) == (429, "2")
    status, headers, _ = get(server, "/a.bin")
    assert (status, headers["Retry-After"]) == (503, OLD_DATE)
    assert get(server, "/a.bin")[0] == 200


def test_status_faults_keep_the_connection(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.status(500), Fault.retry_after(1)])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        seen = []
        for _ in range(3):
            conn.request("GET", "/a.bin")
            resp = conn.getresponse()
            resp.read()
            seen.append(resp.status)
    finally:
        conn.close()
    assert seen == [500, 429, 200]
    assert len({r.connection for r in server.requests}) == 1


def test_drop_gives_no_response(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.drop()])
    with pytest.raises(http.client.RemoteDisconnected):
        get(server, "/a.bin")
    record = server.requests[-1]
    assert (record.status, record.fault, record.body_bytes_sent) == (None, Fault.drop(), 0)


def test_ignore_range(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.ignore_range()])
    status, headers, body = get(server, "/a.bin", {"Range": "bytes=100-199"})
    assert (status, body) == (200, DATA)
    assert "Content-Range" not in headers


@pytest.mark.parametrize(("spec", "asked"), [("bytes=100-199", 100), (None, 0)])
def test_wrong_content_range(server: ChaosServer, spec: str | None, asked: int) -> None:
    server.script("/a.bin", [Fault.wrong_content_range()])
    status, headers, body = get(server, "/a.bin", {"Range": spec} if spec else {})
    assert status == 206
    claimed = headers["Content-Range"].removeprefix("bytes ").split("/")[0]
    first, last = (int(x) for x in claimed.split("-"))
    assert first != asked
    assert body == DATA[first : last + 1]


def test_change_etag_breaks_if_range(server: ChaosServer) -> None:
    _, headers, _ = get(server, "/a.bin")
    etag = headers["ETag"]
    server.script("/a.bin", [Fault.change_etag()])
    asked = {"Range": "bytes=100-", "If-Range": etag}
    status, changed, body = get(server, "/a.bin", asked)
    assert (status, body) == (200, DATA)
    assert changed["ETag"] != etag
    assert changed["Last-Modified"] != headers["Last-Modified"]
    status, _, body = get(server, "/a.bin", asked)
    assert (status, body) == (206, DATA[100:])


def test_script_order_and_any_path_queue(server: ChaosServer) -> None:
    server.add_file("/b.bin", b"bee")
    server.script(None, [Fault.status(502), Fault.status(504)])
    server.script("/a.bin", [Fault.status(500)])
    assert get(server, "/a.bin")[0] == 500  # its own queue first
    assert get(server, "/b.bin")[0] == 502
    assert get(server, "/a.bin")[0] == 504
    assert get(server, "/a.bin")[0] == 200
    assert get(server, "/b.bin")[2] == b"bee"
    server.script(None, [Fault.status(500)])
    server.clear_scripts()
    assert get(server, "/a.bin")[0] == 200


def test_fault_constructors_validate() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        Fault.reset_after(-1)
    with pytest.raises(ValueError, match="status"):
        Fault.status(99)
    with pytest.raises(ValueError, match="seconds"):
        Fault.stall(-1)


# -- records -----------------------------------------------------------------------------


def test_records_counts_and_reset(server: ChaosServer) -> None:
    server.add_file("/b.bin", b"0123456789")
    server.script("/a.bin", [Fault.close_after(100)])
    raw(server, req("/a.bin", "X-Custom: Yes"))
    get(server, "/b.bin", {"Range": "bytes=-4"})
    get(server, "/b.bin", method="HEAD")
    records = server.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/a.bin", 200),
        ("GET", "/b.bin", 206),
        ("HEAD", "/b.bin", 200),
    ]
    assert records[0].headers["x-custom"] == "Yes"
    assert records[0].fault == Fault.close_after(100)
    assert records[1].fault is None
    assert records[1].range_start == 6
    assert records[2].range_start is None
    assert server.request_count() == 3
    assert server.request_count("/b.bin") == 2
    assert server.bytes_sent("/a.bin") == 100
    assert server.bytes_sent() == 104
    server.reset_log()
    assert (server.requests, server.request_count(), server.bytes_sent()) == ([], 0, 0)


# -- directory serving -------------------------------------------------------------------


def test_directory_serving_and_traversal(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "top.bin").write_bytes(DATA)
    (root / "sub" / "with space.txt").write_bytes(b"spaced")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with ChaosServer(root=root, files={"/mem": b"m"}) as srv:
        status, headers, body = get(srv, "/top.bin")
        assert (status, body, headers["Content-Length"]) == (200, DATA, str(SIZE))
        assert headers["ETag"].startswith('"')
        status, headers, body = get(srv, "/top.bin", {"Range": "bytes=7-"})
        assert (status, body) == (206, DATA[7:])
        path = urlsplit(srv.url("/sub/with space.txt")).path
        assert get(srv, path)[2] == b"spaced"
        assert get(srv, "/mem")[2] == b"m"
        for attack in (
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/sub/%2E%2E/%2e%2e/secret.txt",
            "/link.txt",
            "/sub",
            "/",
        ):
            assert raw(srv, req(attack))[0] == 404, attack
        srv.script("/top.bin", [Fault.reset_after(3000)])
        _, _, body, error = raw(srv, req("/top.bin"))
        assert (body, type(error)) == (DATA[:3000], ConnectionResetError)


def test_big_body_streams_in_chunks() -> None:
    big = DATA * 20  # 6 MB: several 1 MiB chunks
    with ChaosServer(files={"/big": big}) as srv:
        assert get(srv, "/big")[2] == big
        assert get(srv, "/big", {"Range": "bytes=1048570-"})[2] == big[1048570:]
        assert srv.bytes_sent() == len(big) * 2 - 1048570


# -- lifecycle ---------------------------------------------------------------------------


def test_max_seconds_stops_by_itself_and_stop_is_idempotent() -> None:
    srv = ChaosServer(files={"/a": b"a"}, max_seconds=0.2).start()
    assert get(srv, "/a")[2] == b"a"
    assert srv.wait(5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
    srv.stop()
    srv.stop()


def test_start_twice_and_port_before_start() -> None:
    srv = ChaosServer()
    with pytest.raises(RuntimeError):
        srv.url("/")
    with srv:
        with pytest.raises(RuntimeError):
            srv.start()
        assert srv.base_url == f"http://127.0.0.1:{srv.port}"


def test_command_line_entry_point(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"from the command line")
    src = Path(chaos_module.__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "surefetch.testing.chaos", str(tmp_path), "--max-seconds", "2"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True) as proc:
        assert proc.stdout is not None
        url = urlsplit(proc.stdout.readline().strip())
        assert (url.scheme, url.hostname) == ("http", "127.0.0.1")
        conn = http.client.HTTPConnection("127.0.0.1", url.port, timeout=5)
        conn.request("GET", "/f.bin")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"from the command line")
        conn.close()
        assert proc.wait(timeout=10) == 0


def test_range_start_is_recorded_for_every_answer(server: ChaosServer) -> None:
    server.script("/a.bin", [Fault.retry_after(1), Fault.drop()])
    get(server, "/a.bin", {"Range": "bytes=-100"})
    with pytest.raises(http.client.RemoteDisconnected):
        get(server, "/a.bin", {"Range": "bytes=-100"})  # dropped: the size is not looked up
    get(server, "/nope", {"Range": "bytes=7-"})
    get(server, "/a.bin", {"Range": "bytes=9-2"})
    assert [r.range_start for r in server.requests] == [SIZE - 100, None, 7, None]
