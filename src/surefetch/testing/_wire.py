"""The chaos server's HTTP/1.1 wire format: requests read, ranges and validators checked,
response heads written. Hand-written on purpose: a test server must be able to bend HTTP
in ways no framework allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import socket
import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

if sys.platform == "linux":
    import fcntl
    import termios

CHUNK = 1 << 20
# How long reset_after waits for the peer to acknowledge the body bytes before the
# RST; a client that stopped reading must not hold the connection forever.
ACK_WAIT = 5.0
NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(slots=True)
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    target: str = ""  # the request-target as sent, query included


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    source: memoryview | BinaryIO | None = None
    offset: int = 0
    length: int = 0
    close: bool = False
    content_length: int | None = None


class BadRequest(Exception):
    pass


# -- HTTP helpers ----------------------------------------------------------------------


def norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def parse_head(head: bytes) -> Request:
    text = head.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0]:
        raise BadRequest(lines[0])
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(line)
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if target.startswith("/"):
        raw = target.split("?", 1)[0].split("#", 1)[0]
    elif "://" in target:
        # Absolute form, as sent to proxies; it may carry userinfo, which is ignored.
        raw = urlsplit(target).path or "/"
    else:
        raw = target
    return Request(method, unquote(raw), version, headers, target)


async def discard_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    value = headers.get("content-length")
    if value is None:
        return
    if not value.isdigit():
        raise BadRequest(f"Content-Length: {value}")
    left = int(value)
    while left:
        chunk = await reader.read(min(left, CHUNK))
        if not chunk:
            raise ConnectionResetError("client closed inside the request body")
        left -= len(chunk)


def keep_alive(request: Request) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) of a single byte range, end clamped; start >= size if unsatisfiable.

    None when there is no usable single range: RFC 9110 lets a server ignore a
    malformed Range, and answering multi-range requests in full is allowed too.
    """
    if value is None:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not first:
        if not last.isdigit():
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return (size, size)  # unsatisfiable
        return (max(size - suffix, 0), size - 1)
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return (start, start)  # unsatisfiable
    return (start, min(int(last), size - 1) if last else size - 1)


def asked_range_start(value: str | None, size: int | None) -> int | None:
    """The first byte asked for, for the records; None if unknowable or not asked."""
    if value is None or (size is None and value.partition("=")[2].strip().startswith("-")):
        return None  # a suffix range means nothing without a file size
    wanted = parse_range(value, sys.maxsize if size is None else size)
    return wanted[0] if wanted else None


def if_range_matches(value: str | None, etag: str, last_modified: int) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # strong comparison: a weak tag never matches
    return parse_date(value) == last_modified


def not_modified(headers: dict[str, str], etag: str, last_modified: int) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    since = parse_date(headers.get("if-modified-since", ""))
    return since is not None and last_modified <= since


def parse_date(value: str) -> int | None:
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def wrong_start(start: int, size: int) -> int | None:
    if start + 1 < size:
        return start + 1
    if start != 0 and size > 0:
        return 0
    return None


def set_body(resp: Response, body: bytes, method: str) -> None:
    if resp.status in NO_BODY_STATUSES:
        return
    resp.headers.insert(0, ("Content-Type", "text/plain; charset=utf-8"))
    set_source(resp, memoryview(body), 0, len(body), method)


def set_source(
    resp: Response, source: memoryview | BinaryIO | None, offset: int, length: int, method: str
) -> None:
    resp.content_length = length
    if method != "HEAD":
        resp.source, resp.offset, resp.length = source, offset, length


def merge(defaults: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    names = {name.lower() for name, _ in extra}
    return [(n, v) for n, v in defaults if n.lower() not in names] + extra


def head_bytes(resp: Response) -> bytes:
    try:
        phrase = http.HTTPStatus(resp.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [
        f"HTTP/1.1 {resp.status} {phrase}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "Server: surefetch-chaos",
    ]
    names = {name.lower() for name, _ in resp.headers}
    if resp.content_length is not None and "content-length" not in names:
        lines.append(f"Content-Length: {resp.content_length}")
    lines += [f"{name}: {value}" for name, value in resp.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def reset(writer: asyncio.StreamWriter) -> None:
    """Abort with RST, but only once the peer holds every byte already written.

    An RST makes the kernel discard unsent data, so without the wait a client
    could see fewer than the scripted number of bytes, depending on timing.
    """
    transport = writer.transport
    transport.set_write_buffer_limits(high=0)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    sock = transport.get_extra_info("socket")
    if sock is not None and not transport.is_closing():
        await wait_acked(sock)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def wait_acked(sock: socket.socket) -> None:
    if sys.platform != "linux":
        await asyncio.sleep(0.05)  # no portable way to ask; loopback is fast
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACK_WAIT
    while loop.time() < deadline:
        try:
            # TIOCOUTQ on a TCP socket: bytes written but not yet acknowledged.
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return
        if struct.unpack("i", raw)[0] == 0:
            return
        await asyncio.sleep(0.001)
