"""Zip archives: read from a complete file, since the index is at its end."""

from __future__ import annotations

import os
import stat
import time
import zipfile
from pathlib import Path
from typing import cast

from surefetch._extract.limits import ExpansionMeter, MeteredMember, ReadableInto
from surefetch._extract.writer import SafeTree

_MAX_LINK_TARGET = 4096
_DEFAULT_MODE = 0o644


def extract_zip(path: Path, tree: SafeTree, meter: ExpansionMeter) -> None:
    """Extract the zip file at ``path`` into ``tree``.

    Unix modes and symlinks come from the high 16 bits of ``external_attr``
    when present (as Info-ZIP and Python write them); otherwise members are
    plain files with mode 0o644, and names ending in "/" directories.

    Example:
        >>> import io, tempfile
        >>> from surefetch._extract.limits import ExtractLimits
        >>> work = Path(tempfile.mkdtemp())
        >>> with zipfile.ZipFile(work / "a.zip", "w") as z:
        ...     z.writestr("a.txt", "hi")
        >>> (work / "out").mkdir()
        >>> tree = SafeTree(work / "out", archive="a.zip", limits=ExtractLimits())
        >>> extract_zip(work / "a.zip", tree, ExpansionMeter(200.0, compressed=lambda: 1,
        ...     refuse=tree.refuse))
        >>> (work / "out" / "a.txt").read_text()
        'hi'
    """
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        tree.expect(members=len(members), total_bytes=sum(info.file_size for info in members))
        for info in members:
            _extract_member(archive, info, tree, meter)


def _extract_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, tree: SafeTree, meter: ExpansionMeter
) -> None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    name = info.filename
    if name.endswith(("/", "\\")) or kind == stat.S_IFDIR:
        tree.directory(name)
    elif kind == stat.S_IFLNK:
        if info.file_size > _MAX_LINK_TARGET:
            tree.special(name, f"is a symlink with a target of {info.file_size} bytes")
        tree.symlink(name, os.fsdecode(archive.read(info)))
    elif kind in (0, stat.S_IFREG):
        with archive.open(info) as data:
            tree.file(
                name,
                mode=mode & 0o7777 or _DEFAULT_MODE,
                size=info.file_size,
                source=MeteredMember(cast(ReadableInto, data), meter),
                mtime=time.mktime((*info.date_time, 0, 0, -1)),
            )
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        tree.special(name, "is a device node")
    elif kind == stat.S_IFIFO:
        tree.special(name, "is a FIFO")
    else:
        tree.special(name, f"has an unsupported type {kind:#o}")
