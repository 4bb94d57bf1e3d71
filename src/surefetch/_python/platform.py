"""The platform part of an installation key, ``{os}-{arch}-{libc}``, as uv writes it.

`platform_from` is pure (tested on every combination); `this_platform`
feeds it what the running interpreter reports.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# platform.machine() spellings -> the arch names of python-build-standalone keys.
_ARCHES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
    "armv7l": "armv7",
    "ppc64le": "powerpc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True, slots=True)
class Platform:
    """Where an installation runs: ``os`` (linux, macos, windows), ``arch`` and ``libc``.

    ``libc`` is ``gnu`` or ``musl`` on Linux and ``none`` elsewhere.

    Example:
        >>> str(Platform("linux", "x86_64", "gnu"))
        'linux-x86_64-gnu'
    """

    os: str
    arch: str
    libc: str

    def __str__(self) -> str:
        return f"{self.os}-{self.arch}-{self.libc}"


def platform_from(system: str, machine: str, *, musl: bool) -> Platform:
    """The `Platform` of ``sys.platform`` ``system`` on ``platform.machine()`` ``machine``.

    Example:
        >>> str(platform_from("linux", "AMD64", musl=True))
        'linux-x86_64-musl'
        >>> str(platform_from("darwin", "arm64", musl=False))
        'macos-aarch64-none'
    """
    if system.startswith("linux"):
        name, libc = "linux", "musl" if musl else "gnu"
    elif system == "darwin":
        name, libc = "macos", "none"
    elif system in ("win32", "cygwin"):
        name, libc = "windows", "none"
    else:
        name, libc = system, "none"
    lowered = machine.lower()
    return Platform(name, _ARCHES.get(lowered, lowered), libc)


def _is_musl() -> bool:
    """Whether this Linux interpreter runs on musl rather than glibc."""
    confstr = getattr(os, "confstr", None)
    if confstr is not None:
        try:
            if confstr("CS_GNU_LIBC_VERSION"):
                return False  # glibc answers this; musl does not know the name
        except (OSError, ValueError):
            pass
    import glob

    return bool(glob.glob("/lib/ld-musl-*.so.1"))


def this_platform() -> Platform:
    """The `Platform` of the running interpreter (glibc or musl told apart on Linux).

    Example:
        >>> this_platform().os in ("linux", "macos", "windows") or True
        True
    """
    import platform

    musl = sys.platform.startswith("linux") and _is_musl()
    return platform_from(sys.platform, platform.machine(), musl=musl)
