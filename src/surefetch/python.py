"""Managed Python installs: `surefetch.python`.

Install python-build-standalone builds from a mirror, through resets:
resolve a request as uv reads it (``3.12``, ``>=3.11,<3.13``, ``cp312``,
``3.13t``, a full key) against pbs-installer's table or uv's downloads JSON,
fetch and extract while the archive streams (resumed with Range after a
reset), verify its sha256, and persist the tree with a retried rename, one
install per key across processes. `find` and `installed` only read the
install directory: they load no asyncio, no HTTP stack and no catalog.

Example:
    >>> import tempfile
    >>> from surefetch.python import find, installed
    >>> install_dir = tempfile.mkdtemp()
    >>> installed(install_dir=install_dir), find("3.12", install_dir=install_dir)
    ([], None)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from surefetch._python.catalog import Download
    from surefetch._python.errors import PythonInstallError, PythonNotFoundError
    from surefetch._python.install import ainstall, available, install, uninstall
    from surefetch._python.layout import Installation, find, installed
    from surefetch._python.platform import Platform, this_platform

__all__ = [
    "Download",
    "Installation",
    "Platform",
    "PythonInstallError",
    "PythonNotFoundError",
    "ainstall",
    "available",
    "find",
    "install",
    "installed",
    "this_platform",
    "uninstall",
]

_HOMES = {
    "Download": "surefetch._python.catalog",
    "PythonInstallError": "surefetch._python.errors",
    "PythonNotFoundError": "surefetch._python.errors",
    "ainstall": "surefetch._python.install",
    "available": "surefetch._python.install",
    "install": "surefetch._python.install",
    "uninstall": "surefetch._python.install",
    "Installation": "surefetch._python.layout",
    "find": "surefetch._python.layout",
    "installed": "surefetch._python.layout",
    "Platform": "surefetch._python.platform",
    "this_platform": "surefetch._python.platform",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'surefetch.python' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
