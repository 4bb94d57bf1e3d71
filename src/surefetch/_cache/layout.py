"""Where a cache entry lives and how its metadata reads: the light half of the cache.

Keys, bucket directories, entry paths, the names of the cache's own
directories and ``entry.json`` parsing need only ``os``, ``hashlib``, ``json``
and ``urllib.parse``, imported when used. They live here, apart from the rest
of the cache, so that a cache hit on the command line can find its entry
without importing what writing to the cache needs (locks, retries,
dataclasses, ``re``), and so that the two ways in agree by construction. The
patterns that recognise valid names need ``re``: they are in `names`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BUCKET_DOWNLOADS = "downloads"
BUCKET_ARCHIVES = "archives"
BUCKET_WHEELS = "wheels"
# Wheels that surefetch built from source distributions (`surefetch._wheels`):
# apart from "wheels", which may hold wheels downloaded as they are.
BUCKET_BUILT_WHEELS = "built-wheels"
# Each bucket's layout version, the N of its directory `<bucket>-vN`: a new
# format of one bucket moves that bucket alone. LAYOUT_VERSION is the version
# of a bucket not named here.
BUCKET_VERSIONS: dict[str, int] = {
    BUCKET_DOWNLOADS: 1,
    BUCKET_ARCHIVES: 1,
    BUCKET_WHEELS: 1,
    BUCKET_BUILT_WHEELS: 1,
}
LAYOUT_VERSION = 1
META_NAME = "entry.json"
TAG_NAME = "CACHEDIR.TAG"
LOCKS_DIR = "locks"
TMP_DIR = "tmp"
PARTIAL_DIR = "partial"
PARTIAL_SUFFIX = ".part"
TRASH_PREFIX = "trash~"
META_FORMAT = 1
KIND_FILE = "file"
KIND_TREE = "tree"
_META_READ = 1 << 16
_O_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # Windows would translate line ends
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


def normalize_url(url: str) -> str:
    """The form of ``url`` that `url_key` hashes.

    Scheme and host lower-cased, the default port dropped, user information
    and fragment dropped, an empty path made ``/``.

    Example:
        >>> normalize_url("HTTPS://user:secret@Example.ORG:443/a/b.tar.gz?x=1#part")
        'https://example.org/a/b.tar.gz?x=1'
    """
    from urllib.parse import urlsplit, urlunsplit  # here: a hit on the command line skips it

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address keeps its brackets
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"Invalid port in URL {url!r}") from None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = parts.path or ("/" if netloc else "")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def url_key(url: str) -> str:
    """The cache key of a URL: 32 hex digits of the sha256 of `normalize_url` ``(url)``.

    Example:
        >>> url_key("https://example.org/a.whl") == url_key("HTTPS://EXAMPLE.org:443/a.whl#x")
        True
        >>> len(url_key("https://example.org/a.whl"))
        32
    """
    import hashlib

    return hashlib.sha256(normalize_url(url).encode("utf-8")).hexdigest()[:32]


def content_key(sha256: str) -> str:
    """The cache key of content with a known sha256: the hash in lower-case hex.

    Example:
        >>> content_key("AB" * 32) == "ab" * 32
        True
    """
    if not isinstance(sha256, str) or len(sha256) != 64 or not _HEX_DIGITS.issuperset(sha256):
        raise ValueError(f"sha256={sha256!r} is not valid: expected 64 hexadecimal digits")
    return sha256.lower()


def bucket_version(bucket: str) -> int:
    """The layout version of ``bucket`` (`BUCKET_VERSIONS`, else `LAYOUT_VERSION`).

    Example:
        >>> bucket_version("downloads"), bucket_version("anything-else")
        (1, 1)
    """
    return BUCKET_VERSIONS.get(bucket, LAYOUT_VERSION)


def bucket_dir_name(bucket: str) -> str:
    """The directory of ``bucket`` in its current layout version: ``<bucket>-v<N>``.

    Example:
        >>> bucket_dir_name("downloads")
        'downloads-v1'
    """
    return f"{bucket}-v{bucket_version(bucket)}"


def entry_dir(root: str, bucket: str, key: str) -> str:
    """The directory of the entry ``key`` in ``bucket`` under the cache ``root``.

    Example:
        >>> entry_dir("/c", "downloads", "abcd").replace(os.sep, "/")
        '/c/downloads-v1/ab/abcd'
    """
    return os.path.join(root, bucket_dir_name(bucket), key[:2], key)


def is_valid_filename(name: str) -> bool:
    """Whether ``name`` is a single, ordinary path component.

    Example:
        >>> is_valid_filename("a.whl"), is_valid_filename("../a.whl")
        (True, False)
    """
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and len(name.encode("utf-8", "surrogateescape")) <= 255
    )


def parse_record(data: bytes) -> dict[str, object]:
    """The checked content of an ``entry.json``; ValueError when it is not one we wrote.

    Example:
        >>> record = parse_record(
        ...     b'{"format": 1, "kind": "file", "url": "https://h/a.txt", "size": 2,'
        ...     b' "sha256": "ab", "created": 0, "filename": "a.txt"}'
        ... )
        >>> record["filename"], record["created"]
        ('a.txt', 0.0)
    """
    import json

    record = json.loads(data)
    if not isinstance(record, dict) or record.get("format") != META_FORMAT:
        raise ValueError("not a surefetch entry.json of format 1")
    kind = record.get("kind")
    url, size, sha256 = record.get("url"), record.get("size"), record.get("sha256")
    created, filename = record.get("created"), record.get("filename")
    files, manifest = record.get("files"), record.get("manifest")
    if not (
        isinstance(url, str)
        and type(size) is int
        and isinstance(sha256, str)
        and isinstance(created, (int, float))
    ):
        raise ValueError("url, size, sha256 or created is missing or of the wrong type")
    if kind == KIND_FILE:
        if not isinstance(filename, str) or not is_valid_filename(filename):
            raise ValueError(f"invalid filename {filename!r}")
    elif kind == KIND_TREE:
        if type(files) is not int or not isinstance(manifest, str):
            raise ValueError("files or manifest is missing or of the wrong type")
    else:
        raise ValueError(f"unknown kind {kind!r}")
    headers = record.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValueError("headers is not a table of strings")
    boot = record.get("boot")
    if boot is not None and not isinstance(boot, str):
        raise ValueError("boot is not a string")
    times = {name: record.get(name) for name in ("checked", "fresh_until")}
    for name, value in times.items():
        if value is not None and (type(value) not in (int, float) or value != value):
            raise ValueError(f"{name} is not a number")
    return {
        "kind": kind,
        "url": url,
        "size": size,
        "sha256": sha256,
        "created": float(created),
        "filename": filename,
        "files": files,
        "manifest": manifest,
        "content_key": record.get("content_key") is True,
        # HTTP freshness (`surefetch._cache.freshness`), absent from older entries.
        "headers": headers,
        "checked": None if times["checked"] is None else float(times["checked"]),
        "fresh_until": None if times["fresh_until"] is None else float(times["fresh_until"]),
        "immutable": record.get("immutable") is True,
        # The boot that published the entry without fsync (`surefetch._cache.durability`).
        "boot": boot,
    }


def read_record(directory: str) -> dict[str, object] | None:
    """The checked ``entry.json`` of the entry in ``directory``; None when absent.

    Raises ValueError when it exists but is unreadable.

    Example:
        >>> import tempfile
        >>> read_record(tempfile.mkdtemp()) is None
        True
    """
    # os.open and os.read, not open(): this is most of the cost of a cache
    # hit, and skipping the buffered file object halves it.
    try:
        fd = os.open(directory + os.sep + META_NAME, _O_READ)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = [os.read(fd, _META_READ)]
        while len(chunks[-1]) == _META_READ:
            chunks.append(os.read(fd, _META_READ))
    finally:
        os.close(fd)
    return parse_record(b"".join(chunks))


def payload_path(directory: str, kind: object, filename: object) -> str:
    """Where the payload of an entry is: ``file/<filename>`` or ``tree``.

    Example:
        >>> payload_path("/c/e", "file", "a.whl").replace(os.sep, "/")
        '/c/e/file/a.whl'
    """
    if kind == KIND_FILE:
        return f"{directory}{os.sep}{KIND_FILE}{os.sep}{filename}"
    return f"{directory}{os.sep}{KIND_TREE}"


# The boot stamp of an entry published without fsync (`surefetch._cache.durability`):
# here, so that the command line's cache hit reads it without another import.
_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_HEX = frozenset("0123456789abcdef-")

# The boot of this process, read once: [] until then, [None] when unknown.
_boot: list[str | None] = []


def current_boot() -> str | None:
    """The identifier of the running boot of the OS, or None where it cannot be known.

    Linux makes a new random one at every boot; a forked or restarted process
    in the same boot reads the same value.

    Example:
        >>> boot = current_boot()
        >>> boot is None or len(boot) == 36
        True
    """
    if not _boot:
        _boot.append(read_boot_id(_BOOT_ID))
    return _boot[0]


def read_boot_id(path: str) -> str | None:
    """The boot identifier in the file ``path`` (a UUID), or None when it is not one.

    Example:
        >>> read_boot_id("/nonexistent/boot_id") is None
        True
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 64)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = data.strip().decode("ascii", "replace").lower()
    return text if len(text) == 36 and _HEX.issuperset(text) else None


def light_sha256() -> Any:
    """A new sha256 object from the implementation that loads fastest.

    CPython's own (``_sha2``, ``_sha256`` before 3.12) loads in microseconds;
    OpenSSL's, through ``hashlib``, costs milliseconds of a cache hit that
    hashes a few bytes.

    Example:
        >>> light_sha256().hexdigest()[:8]
        'e3b0c442'
    """
    try:
        from _sha2 import sha256  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found, no-redef, unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment, unused-ignore]
    return sha256()
