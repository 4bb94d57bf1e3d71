"""Build a wheel from an sdist once: fetch, unpack, build, check, persist; found ever after.

The steps of one build, under the lock of its `build_key` (sdist sha256 and
config settings) so that any number of processes build it once:

1. the sdist: a local file (hashed), or a URL fetched through surefetch
   (cached, retried, resumed, sha256-verified);
2. a lookup (`names.find_in`): a wheel built before for this interpreter's
   tags is the answer, and no backend runs;
3. unpack with the safe extractor into the cache's temporary area (one
   top-level directory stripped), run the backend (`backend.run_backend`),
   check the wheel (`check.check_wheel`);
4. persist: the wheel and its ``build.json`` become one entry by the cache's
   commit, whose rename is the fs layer's, retried when an antivirus or an
   indexer holds the file (each retry logged) and leaving no partial entry
   when the window passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from surefetch._cache.entry import EntryMeta, file_sha256
from surefetch._cache.layout import BUCKET_BUILT_WHEELS
from surefetch._errors import CacheError, OfflineError, RetriesExhausted, SurefetchError
from surefetch._fetch.single_flight import single_flight
from surefetch._wheels.names import (
    BUILD_RECORD,
    build_key,
    built_by_marker,
    entry_key,
    find_in,
)

if TYPE_CHECKING:
    from surefetch._cache.store import Cache
    from surefetch._retry.policy import RetryPolicy

ConfigSettings = Mapping[str, "str | Sequence[str]"]


class BuildError(SurefetchError):
    """Building a wheel failed: ``Failed to build <name>-<version> from <sdist>``.

    ``__cause__`` says why: the backend's exit status and last output lines,
    the download chain, a refused wheel, or the persist failure.

    Example:
        >>> str(BuildError("Failed to build demo-1.0 from demo-1.0.tar.gz"))
        'Failed to build demo-1.0 from demo-1.0.tar.gz'
    """


class PersistError(CacheError):
    """The built wheel could not be renamed into the cache (after the fs layer's retries).

    Example:
        >>> str(PersistError("Failed to write to the built-wheel cache"))
        'Failed to write to the built-wheel cache'
    """


@dataclass(frozen=True, slots=True)
class BuiltWheel:
    """A wheel in the cache and what is known about it; ``to_json`` is the ``--json`` line.

    Example:
        >>> wheel = BuiltWheel(path=Path("/c/demo-1.0-py3-none-any.whl"), name="demo",
        ...                    version="1.0", tags=("py3-none-any",), sdist_sha256="ab" * 32,
        ...                    wheel_sha256="cd" * 32, from_cache=True, build_s=1.5)
        >>> sorted(wheel.to_json())[:3]
        ['build_s', 'elapsed_s', 'from_cache']
    """

    path: Path
    name: str
    version: str
    tags: tuple[str, ...]
    sdist_sha256: str
    wheel_sha256: str
    from_cache: bool
    build_s: float
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The keys of ``surefetch wheel --json``.

        Example:
            >>> BuiltWheel(path=Path("/w.whl"), name="d", version="1", tags=(), sdist_sha256="",
            ...            wheel_sha256="", from_cache=False, build_s=0.0).to_json()["wheel"]
            '/w.whl'
        """
        return {
            "wheel": str(self.path),
            "name": self.name,
            "version": self.version,
            "tags": list(self.tags),
            "sdist_sha256": self.sdist_sha256,
            "wheel_sha256": self.wheel_sha256,
            "from_cache": self.from_cache,
            "build_s": round(self.build_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
        }


def read_built(path: Path, *, from_cache: bool, started: float) -> BuiltWheel:
    """The `BuiltWheel` of the cached wheel at ``path``, from the ``build.json`` beside it."""
    record = json.loads((path.parent / BUILD_RECORD).read_bytes())
    return BuiltWheel(
        path=path,
        name=str(record["name"]),
        version=str(record["version"]),
        tags=tuple(str(tag) for tag in record["tags"]),
        sdist_sha256=str(record["sdist_sha256"]),
        wheel_sha256=str(record["wheel_sha256"]),
        from_cache=from_cache,
        build_s=float(record["build_s"]),
        elapsed_s=time.monotonic() - started,
    )


def _is_url(sdist: str) -> bool:
    scheme, sep, _ = sdist.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https")


@dataclass(frozen=True, slots=True)
class _Sdist:
    """A local sdist file and what names it in messages."""

    path: Path
    shown: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class _WheelStore:
    """The built wheels of one sdist and set of settings, for `single_flight`."""

    sdist: _Sdist
    key: str
    cache: Cache
    isolation: bool
    config_settings: ConfigSettings | None
    rebuild: bool
    started: float

    def lock(self) -> AbstractAsyncContextManager[None]:
        return self.cache.lock_async(BUCKET_BUILT_WHEELS, self.key)

    async def lookup(self) -> BuiltWheel | None:
        found = find_in(os.fspath(self.cache.root), self.key)
        if found is None:
            return None
        return read_built(Path(found), from_cache=True, started=self.started)

    def offline_error(self) -> Exception:
        return OfflineError(
            f"No wheel built from {self.sdist.shown} is in the cache at {self.cache.root}, "
            "and offline mode is on: an isolated build needs the package index "
            "(build without isolation, or go online)"
        )

    async def produce(self) -> BuiltWheel:
        from surefetch._extract.archive import extract_file
        from surefetch._wheels.backend import backend_name, run_backend
        from surefetch._wheels.check import check_wheel, label_from_filename, read_sdist_metadata

        cache, sdist = self.cache, self.sdist
        label = label_from_filename(sdist.path.name)
        try:
            with cache.temp_dir(BUCKET_BUILT_WHEELS, self.key) as work:
                source, output, tree = work / "src", work / "out", work / "entry"
                for directory in (source, output, tree):
                    directory.mkdir()
                await asyncio.to_thread(
                    extract_file, sdist.path, source, name=sdist.path.name, strip_components=1
                )
                metadata = read_sdist_metadata(source)
                if metadata is not None:
                    label = metadata.label
                backend = backend_name(source)
                began = time.monotonic()
                built = await asyncio.to_thread(
                    run_backend,
                    source,
                    output,
                    isolation=self.isolation,
                    config_settings=self.config_settings,
                )
                build_s = time.monotonic() - began
                checked = await asyncio.to_thread(check_wheel, built, expected=metadata)
                wheel_sha256, _ = await asyncio.to_thread(file_sha256, os.fspath(built))
                os.rename(built, tree / built.name)
                record = {
                    "wheel": built.name,
                    "name": checked.name,
                    "version": checked.version,
                    "tags": list(checked.tags),
                    "sdist_sha256": sdist.sha256,
                    "wheel_sha256": wheel_sha256,
                    "backend": backend,
                    "build_s": round(build_s, 3),
                    "isolation": self.isolation,
                    "config_settings": dict(self.config_settings or {}),
                    "python": sys.version.split()[0],
                    "created": time.time(),
                }
                (tree / BUILD_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
                (tree / built_by_marker()).touch()  # lets this interpreter skip tag checks
                key = entry_key(self.key, built.name)
                meta = EntryMeta(
                    url=sdist.shown, size=sdist.size, sha256=sdist.sha256, created=time.time()
                )
                entry = await asyncio.to_thread(self._persist, key, tree, meta)
        except SurefetchError as error:
            raise BuildError(f"Failed to build {label} from {sdist.shown}") from error
        except OSError as error:
            raise BuildError(f"Failed to build {label} from {sdist.shown}") from error
        return read_built(entry / built.name, from_cache=False, started=self.started)

    def _persist(self, key: str, tree: Path, meta: EntryMeta) -> Path:
        """Commit ``tree`` as the entry ``key``; a rebuild replaces the entry it finds."""
        cache = self.cache
        if self.rebuild:
            cache.remove(BUCKET_BUILT_WHEELS, key)
        try:
            return cache.commit_dir(BUCKET_BUILT_WHEELS, key, tree, meta=meta).path
        except RetriesExhausted as error:
            last = error.last_error
            if isinstance(last, OSError) and last.filename and last.filename2:
                where = f"failed to rename {last.filename} to {last.filename2}"
            else:
                where = f"failed to commit the entry {key}"
            raise PersistError(f"Failed to write to the built-wheel cache: {where}") from error


async def _local_sdist(
    sdist: str | os.PathLike[str],
    *,
    sha256: str | None,
    cache: Cache,
    policy: RetryPolicy | None,
    retries: int | None,
    offline: bool,
) -> _Sdist:
    text = os.fspath(sdist)
    if _is_url(text):
        from surefetch._fetch.async_api import afetch_result
        from surefetch._url import filename_from_url, redact_url
        from surefetch._wheels.check import label_from_filename

        try:
            fetched = await afetch_result(
                text, sha256=sha256, cache=cache, policy=policy, retries=retries, offline=offline
            )
        except SurefetchError as error:
            label = label_from_filename(filename_from_url(text))
            raise BuildError(f"Failed to build {label} from {redact_url(text)}") from error
        return _Sdist(fetched.path, fetched.url, fetched.sha256, fetched.size)
    path = Path(text).expanduser().absolute()
    from surefetch._errors import ConfigError, IntegrityError

    if not path.is_file():
        raise ConfigError(f"sdist {text!r} is not valid: expected a URL or an existing file")
    digest, size = await asyncio.to_thread(file_sha256, os.fspath(path))
    if sha256 is not None and digest != sha256.lower():
        raise IntegrityError(f"Hash mismatch for {path}: expected sha256 {sha256}, got {digest}")
    return _Sdist(path, str(path), digest, size)


async def abuild_result(
    sdist: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    isolation: bool = True,
    config_settings: ConfigSettings | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    offline: bool | None = None,
    policy: RetryPolicy | None = None,
    retries: int | None = None,
) -> BuiltWheel:
    """See `surefetch.wheels.abuild_result`."""
    from surefetch._config import OFFLINE, resolve
    from surefetch._fetch.request import open_cache

    started = time.monotonic()
    store_cache = open_cache(cache)
    offline = resolve(OFFLINE) if offline is None else offline
    local = await _local_sdist(
        sdist, sha256=sha256, cache=store_cache, policy=policy, retries=retries, offline=offline
    )
    store = _WheelStore(
        sdist=local,
        key=build_key(local.sha256, config_settings),
        cache=store_cache,
        isolation=isolation,
        config_settings=config_settings,
        rebuild=rebuild,
        started=started,
    )
    # Offline, an isolated build would need the package index: a miss is an error.
    result = await single_flight(store, refresh=rebuild, offline=offline and isolation)
    return _with_elapsed(result, started)


def _with_elapsed(result: BuiltWheel, started: float) -> BuiltWheel:
    import dataclasses

    return dataclasses.replace(result, elapsed_s=time.monotonic() - started)
