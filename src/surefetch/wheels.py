"""Build a wheel from a source distribution once, and find it again: `surefetch.wheels`.

`build` fetches (or hashes) an sdist, builds it through its PEP 517 backend
(pypa/build) and renames the checked wheel into the cache's ``built-wheels``
bucket, retrying the spurious rename failures that an antivirus or an
indexer causes. Asked again, by any process sharing the cache, it returns
the cached wheel without running the backend. `find` is the light lookup:
no build machinery, no asyncio.

Example:
    >>> import tempfile
    >>> from surefetch import wheels
    >>> wheels.find("ab" * 32, cache=tempfile.mkdtemp()) is None
    True
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from surefetch._cache.store import Cache
    from surefetch._retry.policy import RetryPolicy
    from surefetch._wheels.backend import BackendError
    from surefetch._wheels.check import WheelCheckError
    from surefetch._wheels.pipeline import BuildError, BuiltWheel, PersistError

    ConfigSettings = Mapping[str, str | Sequence[str]]

_HOMES = {
    "BackendError": "_wheels.backend",
    "BuildError": "_wheels.pipeline",
    "BuiltWheel": "_wheels.pipeline",
    "PersistError": "_wheels.pipeline",
    "WheelCheckError": "_wheels.check",
}

__all__ = [
    "BackendError",
    "BuildError",
    "BuiltWheel",
    "PersistError",
    "WheelCheckError",
    "abuild",
    "abuild_result",
    "build",
    "build_result",
    "find",
]


def find(
    sdist_sha256: str,
    *,
    config_settings: ConfigSettings | None = None,
    cache: Cache | str | os.PathLike[str] | None = None,
) -> Path | None:
    """The cached wheel built from the sdist with this sha256 that suits this interpreter.

    Among the wheels built from it with these ``config_settings`` (by any
    interpreter or platform), the first compatible one in
    `packaging.tags.sys_tags` order; None when there is none. Light: no
    build machinery, no asyncio, no HTTP stack.

    Example:
        >>> import tempfile
        >>> find("ab" * 32, config_settings={"--build-option": "x"}, cache=tempfile.mkdtemp())
    """
    from pathlib import Path

    from surefetch._wheels.names import find as find_path

    found = find_path(sdist_sha256, config_settings=config_settings, cache=cache)
    return None if found is None else Path(found)


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
    """Like `abuild`, but return a `BuiltWheel`: the path and what the build took.

    Example:
        >>> import asyncio
        >>> from surefetch import wheels
        >>> built = asyncio.run(wheels.abuild_result("demo-1.0.tar.gz"))  # doctest: +SKIP
        >>> built.from_cache  # doctest: +SKIP
        False
    """
    from surefetch._wheels.pipeline import abuild_result as run

    return await run(
        sdist,
        sha256=sha256,
        isolation=isolation,
        config_settings=config_settings,
        cache=cache,
        rebuild=rebuild,
        offline=offline,
        policy=policy,
        retries=retries,
    )


async def abuild(
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
) -> Path:
    """Build a wheel from ``sdist`` once, or find the one built before; return its cached path.

    ``sdist`` is a URL (fetched through surefetch: cached, retried, resumed,
    checked against ``sha256``) or a local ``.tar.gz``/``.zip`` file. The
    backend runs in a fresh environment whose build requirements come from
    the package index pip is configured with; ``isolation=False`` uses the
    current environment instead. ``config_settings`` are passed to the
    backend and are part of the key. ``rebuild`` builds again and replaces
    the wheel for this interpreter. ``offline`` (default: the ``offline``
    setting) uses the cache only for the sdist, and refuses an isolated
    build on a miss. ``policy``/``retries`` govern the sdist's download.

    Raises `BuildError` ("Failed to build <name>-<version> from <sdist>")
    whose cause is the backend's exit status and last output lines, the
    download chain, a refused wheel, or the failed rename into the cache.

    Example:
        >>> import asyncio
        >>> from surefetch import wheels
        >>> path = asyncio.run(wheels.abuild("demo-1.0.tar.gz", isolation=False))  # doctest: +SKIP
        >>> path.name  # doctest: +SKIP
        'demo-1.0-py3-none-any.whl'
    """
    built = await abuild_result(
        sdist,
        sha256=sha256,
        isolation=isolation,
        config_settings=config_settings,
        cache=cache,
        rebuild=rebuild,
        offline=offline,
        policy=policy,
        retries=retries,
    )
    return built.path


def build_result(
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
    """The synchronous twin of `abuild_result`.

    Example:
        >>> from surefetch import wheels
        >>> wheels.build_result("demo-1.0.tar.gz").name  # doctest: +SKIP
        'demo'
    """
    arguments = dict(locals())
    from surefetch._run_sync import run_sync

    return run_sync(abuild_result(**arguments))


def build(
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
) -> Path:
    """The synchronous twin of `abuild`: the cached wheel's path.

    Example:
        >>> from surefetch import wheels
        >>> wheels.build("demo-1.0.tar.gz", isolation=False).name  # doctest: +SKIP
        'demo-1.0-py3-none-any.whl'
    """
    return build_result(**locals()).path


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'surefetch.wheels' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"surefetch.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
