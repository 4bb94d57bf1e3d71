"""Install a Python: resolve, fetch and extract while streaming, verify, persist, link.

The steps, for one installation key, under that key's lock (`single_flight`
with a store of installations, so N processes make one download and one
install):

1. the archive is fetched through surefetch's own fetch, content-keyed by its
   sha256, and extracted into a directory of the install directory's
   temporary area *while it streams*; a reset is resumed with Range and the
   same extraction goes on;
2. the metadata file is written into the tree;
3. the tree is persisted into ``<install_dir>/<key>`` with the fs layer's
   retried rename (a reinstall moves the old one aside first and puts it
   back if placing the new one fails);
4. the minor-version link is updated under the minor version's own lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from surefetch._cache.store import Cache
from surefetch._errors import (
    ArchiveDownloadError,
    ConfigError,
    DownloadError,
    ExtractError,
    IntegrityError,
    OfflineError,
    RetriesExhausted,
)
from surefetch._fetch.request import open_cache
from surefetch._fetch.single_flight import single_flight
from surefetch._fs import ops as fs
from surefetch._python.catalog import Download, candidate_urls, minor_key, select
from surefetch._python.errors import PythonInstallError
from surefetch._python.layout import (
    METADATA_NAME,
    TEMP_DIR,
    Installation,
    executable_in,
    find,
    install_root,
    metadata_bytes,
    read_installation,
    update_minor_link,
)
from surefetch._python.platform import this_platform
from surefetch._python.requests import parse_request
from surefetch._retry.classify import iter_chain

if TYPE_CHECKING:
    from surefetch._fetch.request import FetchResult
    from surefetch._http.stats import ProgressCallback
    from surefetch._retry.policy import RetryPolicy

LOCK_BUCKET = "python"


def lock_key(root: Path, name: str) -> str:
    """The cache-lock key of ``name`` (an installation or minor key) in install directory ``root``.

    Example:
        >>> len(lock_key(Path("/opt/py"), "cpython-3.12.4-linux-x86_64-gnu"))
        32
    """
    return hashlib.sha256(f"{root}\0{name}".encode()).hexdigest()[:32]


def resolve_mirrors(mirrors: Sequence[str] | str) -> list[str]:
    """The mirrors to use: those given, else ``SUREFETCH_PYTHON_INSTALL_MIRROR`` (or a config file).

    Example:
        >>> resolve_mirrors(["https://m1", "https://m2"])
        ['https://m1', 'https://m2']
    """
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    if mirrors:
        return [m.strip() for m in mirrors if m.strip()]
    from surefetch._config import PYTHON_INSTALL_MIRROR, resolve

    configured = resolve(PYTHON_INSTALL_MIRROR)
    return [configured] if configured else []


def install_failure(key: str, name: str, error: BaseException) -> PythonInstallError:
    """The error of a failed install of ``key``, whose archive is ``name``.

    When retries ran out, the lines read, in order: "Failed to install KEY",
    "Request failed after N retries in X", "Failed to extract archive:
    NAME", then the last attempt's error.

    Example:
        >>> from surefetch._errors import FailedAttempt
        >>> reset = ConnectionResetError(104, "Connection reset by peer")
        >>> exhausted = RetriesExhausted(retries=3, elapsed=7.1,
        ...                              attempts=[FailedAttempt(4, reset, None, 7.1)])
        >>> exhausted.__cause__ = reset
        >>> failed = ArchiveDownloadError("Failed to extract archive 'c.tar.gz'")
        >>> failed.__cause__ = exhausted
        >>> top = install_failure("cpython-3.12.4-linux-x86_64-gnu", "c.tar.gz", failed)
        >>> for link in (top, top.__cause__, top.__cause__.__cause__):
        ...     print(link)
        Failed to install cpython-3.12.4-linux-x86_64-gnu
        Request failed after 3 retries in 7.1s
        Failed to extract archive: c.tar.gz
    """
    top = PythonInstallError(key)
    exhausted = next((e for e in iter_chain(error) if isinstance(e, RetriesExhausted)), None)
    if exhausted is None or isinstance(error, IntegrityError):
        top.__cause__ = error
        return top
    again = RetriesExhausted(
        retries=exhausted.retries,
        elapsed=exhausted.elapsed,
        attempts=exhausted.attempts,
        subject=exhausted.subject,
    )
    extraction = ArchiveDownloadError(f"Failed to extract archive: {name}")
    extraction.__cause__ = exhausted.__cause__ or exhausted.last_error
    again.__cause__ = extraction
    top.__cause__ = again
    top.original = error  # type: ignore[attr-defined]  # the chain as the fetch layer raised it
    return top


def _is_file_url(url: str) -> bool:
    return url.lower().startswith("file:")


def _local_path(url: str) -> Path:
    from urllib.request import url2pathname

    return Path(url2pathname(unquote(urlsplit(url).path)))


def _from_local_file(url: str, download: Download, target: Path) -> None:
    """Extract the archive of a ``file://`` mirror into ``target``, checking its sha256 first."""
    from surefetch._extract.archive import DEFAULT_LIMITS, extract_file

    path = _local_path(url)
    try:
        if download.sha256 is not None:
            digest = hashlib.sha256()
            with open(path, "rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
            if digest.hexdigest() != download.sha256.lower():
                raise IntegrityError(
                    f"Hash mismatch for {url}: expected sha256 {download.sha256}, "
                    f"got {digest.hexdigest()}"
                )
        target.mkdir(exist_ok=True)
        extract_file(
            path,
            target,
            name=download.filename,
            limits=DEFAULT_LIMITS,
            strip_components=1,
        )
    except OSError as error:
        raise DownloadError(f"Failed to read {url}") from error


@dataclass(frozen=True, slots=True)
class _Fetched:
    from_cache: bool = False
    attempts: int = 1
    retries: int = 0
    resumed_bytes: int = 0


def _runs(urls: Sequence[str]) -> list[list[str]]:
    """``urls`` cut into runs of ``file:`` URLs and runs of the others, in order."""
    runs: list[list[str]] = []
    for url in urls:
        if runs and _is_file_url(runs[-1][0]) == _is_file_url(url):
            runs[-1].append(url)
        else:
            runs.append([url])
    return runs


@dataclass(frozen=True, slots=True)
class _Settings:
    cache: Cache
    policy: RetryPolicy | None
    retries: int | None
    offline: bool | None
    progress: ProgressCallback | None


async def _fetch_tree(
    download: Download, urls: Sequence[str], target: Path, settings: _Settings
) -> _Fetched:
    """Fetch and extract ``download`` into ``target`` from the first of ``urls`` that works.

    Runs of HTTP URLs go to one fetch (the first, then the others as its
    mirrors, each with a budget of its own); a ``file:`` mirror is read in
    place. A hash mismatch is final.
    """
    from surefetch._fetch.async_api import afetch_result

    last: BaseException | None = None
    for run in _runs(urls):
        try:
            if _is_file_url(run[0]):
                for url in run:
                    try:
                        await asyncio.to_thread(_from_local_file, url, download, target)
                        return _Fetched()
                    except DownloadError as error:
                        if isinstance(error, IntegrityError):
                            raise
                        last = error
                        await asyncio.to_thread(fs.remove_tree, target)
                continue
            result: FetchResult = await afetch_result(
                run[0],
                mirrors=run[1:],
                sha256=download.sha256,
                cache=settings.cache,
                policy=settings.policy,
                retries=settings.retries,
                offline=settings.offline,
                progress=settings.progress,
                extract_to=target,
                strip_components=1,
            )
            return _Fetched(
                from_cache=result.from_cache,
                attempts=result.attempts,
                retries=result.retries,
                resumed_bytes=result.resumed_bytes,
            )
        except IntegrityError:
            raise
        except (DownloadError, OSError) as error:
            last = error
            await asyncio.to_thread(fs.remove_tree, target)
    assert last is not None
    raise last


def _finish_tree(tree: Path) -> None:
    """Give the tree a ``bin/python`` beside ``bin/python3`` (as installers expect), or fail."""
    executable = executable_in(tree)
    if not executable.exists():
        raise ArchiveDownloadError(
            f"The archive holds no {executable.relative_to(tree).as_posix()}: "
            "not a python-build-standalone build"
        )
    plain = executable.parent / "python"
    if os.name != "nt" and not plain.exists() and not plain.is_symlink():
        os.symlink(executable.name, plain)


@dataclass(frozen=True, slots=True)
class _InstallStore:
    """One installation key's directory in the install directory, for `single_flight`."""

    root: Path
    download: Download
    urls: tuple[str, ...]
    settings: _Settings
    started: float

    @property
    def target(self) -> Path:
        return self.root / self.download.key

    def lock(self) -> AbstractAsyncContextManager[None]:
        return self.settings.cache.lock_async(LOCK_BUCKET, lock_key(self.root, self.download.key))

    async def lookup(self) -> Installation | None:
        found = await asyncio.to_thread(read_installation, self.target)
        if found is None:
            return None
        return dataclasses.replace(found, elapsed_s=time.monotonic() - self.started)

    def offline_error(self) -> Exception:
        return OfflineError(f"{self.download.key} is not installed and offline mode is on")

    async def produce(self) -> Installation:
        temp = self.root / TEMP_DIR
        await asyncio.to_thread(temp.mkdir, parents=True, exist_ok=True)
        # Holding the key's lock: whatever a killed install of this key left is garbage.
        for leftover in await asyncio.to_thread(lambda: list(temp.glob(f"{self.download.key}~*"))):
            await asyncio.to_thread(fs.remove_tree, leftover)
        work = temp / f"{self.download.key}~{os.getpid()}~{secrets.token_hex(4)}"
        await asyncio.to_thread(work.mkdir)
        try:
            return await self._produce(work)
        finally:
            await asyncio.shield(asyncio.to_thread(fs.remove_tree, work))

    async def _produce(self, work: Path) -> Installation:
        download, name = self.download, self.download.filename
        extracted = work / "tree"
        try:
            fetched = await _fetch_tree(download, self.urls, extracted, self.settings)
            tree = extracted / "install" if download.full else extracted
            await asyncio.to_thread(_finish_tree, tree)
        except ConfigError:
            raise
        except (DownloadError, ExtractError, OSError) as error:
            failure = install_failure(download.key, name, error)
            raise failure from failure.__cause__
        installation = Installation(
            key=download.key,
            version=download.version,
            path=self.target,
            executable=executable_in(self.target),
            implementation=download.implementation,
            variant=download.variant,
            url=download.url,
            sha256=download.sha256,
            build=download.build,
            installed_at=time.time(),
            already_installed=False,
            from_cache=fetched.from_cache,
            attempts=fetched.attempts,
            retries=fetched.retries,
            resumed_bytes=fetched.resumed_bytes,
        )
        await fs.write_atomic_async(tree / METADATA_NAME, metadata_bytes(installation))
        await self._place(tree, work)
        await self._update_link()
        return dataclasses.replace(installation, elapsed_s=time.monotonic() - self.started)

    async def _place(self, tree: Path, work: Path) -> None:
        """Rename ``tree`` to the key's directory; an old one moves aside, and back on failure."""
        target = self.target
        old: Path | None = None
        if target.exists() or target.is_symlink():
            old = work / "old"
            await fs.rename_async(target, old)
        try:
            await fs.persist_dir_async(tree, target)
        except BaseException:
            if old is not None:
                await asyncio.shield(fs.rename_async(old, target))
            raise

    async def _update_link(self) -> None:
        minor = minor_key(self.download.key)
        async with self.settings.cache.lock_async(LOCK_BUCKET, lock_key(self.root, minor)):
            await asyncio.to_thread(update_minor_link, self.root, minor)


async def aload_catalog(
    downloads_json: str | os.PathLike[str] | None,
    *,
    cache: Cache,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
) -> list[Download]:
    """The catalog: ``downloads_json`` (a path or URL of uv's format; default
    ``SUREFETCH_PYTHON_DOWNLOADS_JSON``), else pbs-installer's table.

    A URL is fetched through surefetch (retried, cached; fetched again each
    time unless offline, when the cached copy serves).
    """
    from surefetch._config import PYTHON_DOWNLOADS_JSON, resolve
    from surefetch._python.catalog import load_pbs_catalog, parse_downloads_json, read_local_json

    source = os.fspath(downloads_json) if downloads_json is not None else ""
    source = source.strip() or resolve(PYTHON_DOWNLOADS_JSON)
    if not source:
        return await asyncio.to_thread(load_pbs_catalog)
    lowered = source.lower()
    if lowered.startswith(("http://", "https://")):
        from surefetch._fetch.async_api import afetch_result

        from_cache_only = bool(offline)
        result = await afetch_result(
            source,
            cache=cache,
            policy=policy,
            retries=retries,
            offline=offline,
            refresh=not from_cache_only,
        )
        data = await asyncio.to_thread(result.path.read_bytes)
    elif lowered.startswith("file:"):
        data = await asyncio.to_thread(read_local_json, str(_local_path(source)))
    else:
        data = await asyncio.to_thread(read_local_json, source)
    return parse_downloads_json(data, source=source)


async def ainstall(
    request: str,
    *,
    install_dir: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | str = (),
    downloads_json: str | os.PathLike[str] | None = None,
    reinstall: bool = False,
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    progress: ProgressCallback | None = None,
) -> Installation:
    """The async `install`.

    Example:
        >>> import asyncio
        >>> asyncio.iscoroutinefunction(ainstall)
        True
    """
    started = time.monotonic()
    root = install_root(install_dir)
    parsed = parse_request(request)
    if not reinstall:
        found = await asyncio.to_thread(find, request, install_dir=root)
        if found is not None:
            return dataclasses.replace(found, elapsed_s=time.monotonic() - started)
    opened = open_cache(cache)
    from surefetch._config import OFFLINE, resolve

    offline_now = resolve(OFFLINE) if offline is None else offline
    catalog = await aload_catalog(
        downloads_json, cache=opened, policy=policy, retries=retries, offline=offline_now
    )
    download = select(catalog, parsed, platform=this_platform())
    urls = tuple(candidate_urls(download, resolve_mirrors(mirrors)))
    settings = _Settings(opened, policy, retries, offline_now, progress)
    store = _InstallStore(root, download, urls, settings, started)
    # Offline still installs from the cached archive: the store's miss is not the end.
    return await single_flight(store, refresh=reinstall, offline=False)


def install(
    request: str,
    *,
    install_dir: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | str = (),
    downloads_json: str | os.PathLike[str] | None = None,
    reinstall: bool = False,
    cache: Cache | str | os.PathLike[str] | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
    offline: bool | None = None,
    progress: ProgressCallback | None = None,
) -> Installation:
    """Install the newest Python build that fits ``request``, or find it installed.

    ``request`` is read as uv reads it (``3.12``, ``>=3.11,<3.13``,
    ``cpython@3.12``, ``cp312``, ``3.13t``, a full key). The catalog is
    ``downloads_json`` (a path or URL in uv's downloads-JSON format; default
    ``SUREFETCH_PYTHON_DOWNLOADS_JSON``), else pbs-installer's table.
    ``mirrors`` replace each URL's release-download prefix, tried in order
    before the original (default ``SUREFETCH_PYTHON_INSTALL_MIRROR``).
    ``install_dir`` defaults to ``SUREFETCH_PYTHON_INSTALL_DIR``, else the
    user data directory's ``surefetch/python``. ``reinstall`` replaces an
    installation atomically (a failed one leaves the old in place);
    ``offline`` installs from the archive cached before. ``cache``,
    ``policy``, ``retries`` and ``progress`` are those of `surefetch.fetch`.

    Raises `PythonInstallError` (with its cause chain), `PythonNotFoundError`
    when nothing fits, `ConfigError` for a bad request or setting.

    Example:
        >>> import tempfile
        >>> from surefetch.python import install
        >>> install("3.12", install_dir=tempfile.mkdtemp())  # doctest: +SKIP
        Installation(key='cpython-3.12.4-linux-x86_64-gnu', version='3.12.4', ...)
    """
    arguments = dict(locals())
    from surefetch._run_sync import run_sync

    return run_sync(ainstall(**arguments))


def uninstall(
    request: str | None = None,
    *,
    install_dir: str | os.PathLike[str] | None = None,
    all: bool = False,
    cache: Cache | str | os.PathLike[str] | None = None,
) -> list[Installation]:
    """Remove the installations that fit ``request`` (every one with ``all``); return them.

    Each goes under its key's lock: renamed into the temporary area, then
    removed, and its minor-version link follows.

    Example:
        >>> import tempfile
        >>> uninstall("3.12", install_dir=tempfile.mkdtemp())
        []
    """
    from surefetch._python.layout import installed

    root = install_root(install_dir)
    if all:
        chosen = installed(install_dir=root)
    elif request is None:
        raise ConfigError("uninstall needs a request, or all=True")
    else:
        parsed = parse_request(request)
        chosen = [
            i
            for i in installed(install_dir=root)
            if parsed.matches(
                implementation=i.implementation,
                version=i.version,
                variant=i.variant,
                platform=i.key.split("-", 2)[2],
            )
        ]
    opened = open_cache(cache)
    removed = []
    for installation in chosen:
        with opened.lock(LOCK_BUCKET, lock_key(root, installation.key)):
            if not installation.path.is_dir():
                continue
            temp = root / TEMP_DIR
            temp.mkdir(parents=True, exist_ok=True)
            aside = temp / f"{installation.key}~removed~{secrets.token_hex(4)}"
            fs.rename(installation.path, aside)
            fs.remove_tree(aside)
        minor = minor_key(installation.key)
        with opened.lock(LOCK_BUCKET, lock_key(root, minor)):
            update_minor_link(root, minor)
        removed.append(installation)
    return removed


def available(
    request: str | None = None,
    *,
    downloads_json: str | os.PathLike[str] | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    offline: bool | None = None,
) -> list[Download]:
    """The builds of the catalog for this platform that fit ``request`` (all when None),
    newest first.

    Example:
        >>> builds = available("3.12")
        >>> all(b.version.startswith("3.12.") for b in builds)
        True
    """
    from packaging.version import Version

    from surefetch._run_sync import run_sync

    catalog = run_sync(aload_catalog(downloads_json, cache=open_cache(cache), offline=offline))
    parsed = parse_request(request) if request is not None else None
    wanted = (parsed.platform if parsed is not None else None) or str(this_platform())
    builds = [
        d
        for d in catalog
        if d.platform == wanted
        and (
            parsed is None
            or parsed.matches(
                implementation=d.implementation,
                version=d.version,
                variant=d.variant,
                platform=wanted,
            )
        )
    ]
    return sorted(builds, key=lambda d: (Version(d.version), d.key), reverse=True)
