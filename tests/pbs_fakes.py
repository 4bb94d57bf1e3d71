"""Fake python-build-standalone builds: archives with a ``python/bin/python3`` shim that
runs, a stdlib-shaped tree and incompressible bytes (so resets land mid-body), and
a downloads JSON in uv's format pointing at a server."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass

from archives import Dir, File, Symlink, make_archive
from surefetch._extract.archive import ArchiveFormat

RELEASE = "releases/download"
BUILD = "20240726"
TRIPLES = {
    "linux-x86_64-gnu": "x86_64-unknown-linux-gnu",
    "linux-aarch64-gnu": "aarch64-unknown-linux-gnu",
    "linux-x86_64-musl": "x86_64-unknown-linux-musl",
    "macos-aarch64-none": "aarch64-apple-darwin",
}


@dataclass(frozen=True)
class FakeBuild:
    version: str
    platform: str
    variant: str | None = None
    fmt: ArchiveFormat = ArchiveFormat.TAR_GZ
    size: int = 1 << 20
    full: bool = False

    @property
    def key(self) -> str:
        plus = f"+{self.variant}" if self.variant else ""
        return f"cpython-{self.version}{plus}-{self.platform}"

    @property
    def filename(self) -> str:
        ext = ".tar.gz" if self.fmt is ArchiveFormat.TAR_GZ else ".tar.zst"
        flavor = "pgo+lto-full" if self.full else "install_only"
        if self.variant:
            flavor = f"{self.variant}-{flavor}"
        return f"cpython-{self.version}+{BUILD}-{TRIPLES[self.platform]}-{flavor}{ext}"

    @property
    def path(self) -> str:
        return f"/{RELEASE}/{BUILD}/{self.filename}"

    def archive(self) -> bytes:
        minor = ".".join(self.version.split(".")[:2])
        prefix = "python/install/" if self.full else "python/"
        shim = f'#!/bin/sh\necho "Python {self.version}"\n'.encode()
        noise = random.Random(self.key).randbytes(self.size)
        members: list[tuple[str, object]] = [("python/", Dir())]
        if self.full:
            members += [
                ("python/install/", Dir()),
                ("python/build/", Dir()),
                ("python/build/notes.txt", File(b"build")),
            ]
        members += [
            (f"{prefix}bin/", Dir()),
            (f"{prefix}bin/python{minor}", File(shim, mode=0o755)),
            (f"{prefix}bin/python3", Symlink(f"python{minor}")),
            (f"{prefix}lib/", Dir()),
            (f"{prefix}lib/python{minor}/", Dir()),
            (f"{prefix}lib/python{minor}/os.py", File(b"# os\n")),
            (f"{prefix}lib/python{minor}/encodings/", Dir()),
            (f"{prefix}lib/python{minor}/encodings/__init__.py", File(b"")),
            (f"{prefix}lib/libpython{minor}.so", File(noise)),
            (f"{prefix}include/", Dir()),
        ]
        return make_archive(members, self.fmt)  # type: ignore[arg-type]


def downloads_json(builds: Iterable[FakeBuild], data: dict[str, bytes], base_url: str) -> bytes:
    """uv's downloads JSON for ``builds`` whose archives are ``data[path]`` at ``base_url``."""
    document = {}
    for build in builds:
        system, arch, libc = build.platform.split("-")
        major, minor, patch = build.version.split(".")
        document[build.key] = {
            "name": "cpython",
            "arch": {"family": arch, "variant": None},
            "os": "darwin" if system == "macos" else system,
            "libc": libc,
            "major": int(major),
            "minor": int(minor),
            "patch": int(patch),
            "prerelease": "",
            "url": base_url.rstrip("/") + build.path,
            "sha256": hashlib.sha256(data[build.path]).hexdigest(),
            "variant": build.variant,
            "build": BUILD,
        }
    return json.dumps(document, indent=1).encode()


def served(builds: Iterable[FakeBuild]) -> dict[str, bytes]:
    return {build.path: build.archive() for build in builds}


def write(path: str | os.PathLike[str], data: bytes) -> str:
    with open(path, "wb") as file:
        file.write(data)
    return os.fspath(path)
