"""Safe archive extraction, streaming while the download is still running.

Tar formats are extracted in one pass from any reader, typically a
`GrowingFileReader` over the partial file that the download layer appends
to, so that a resumed download does not restart the extraction. Zip needs
its central directory, at the end of the file, so it is extracted from a
complete file only.

Whatever the format, members go through one writer that refuses anything
that could leave the destination (see ``_writer``), and limits on size,
member count and compression ratio stop decompression bombs. A refused
archive raises `UnsafeArchiveError`; any other failure raises `ExtractError`
chained to its cause.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from surefetch._errors import ExtractError
from surefetch._extract.formats import HEAD_SIZE, ArchiveFormat, decompressed, detect_format
from surefetch._extract.growing import GrowingFileReader, Readable, StreamRewoundError
from surefetch._extract.limits import (
    CountingReader,
    ExpansionMeter,
    ExtractLimits,
    ExtractResult,
    MeteredReader,
)
from surefetch._extract.tar import extract_tar
from surefetch._extract.writer import SafeTree
from surefetch._extract.zip import extract_zip

DEFAULT_LIMITS = ExtractLimits()

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveFormat",
    "ExtractLimits",
    "ExtractResult",
    "GrowingFileReader",
    "Readable",
    "StreamRewoundError",
    "detect_format",
    "extract_file",
    "extract_stream",
]


def extract_stream(
    reader: Readable,
    dest: Path,
    *,
    format: ArchiveFormat,
    name: str,
    limits: ExtractLimits = DEFAULT_LIMITS,
    strip_components: int = 0,
    checksummed: bool = False,
) -> ExtractResult:
    """Extract a tar archive (plain or compressed) from ``reader`` into ``dest``.

    ``dest`` is an existing, empty directory that nothing else writes to
    meanwhile. ``name`` names the archive in messages. The reader is read to
    its end, so that a truncated compressed stream is detected; it is not
    closed. ``checksummed`` says that the archive's bytes are checked
    against a known sha256 before the tree is used, which makes gzip's own
    CRC-32 redundant (it is then skipped).

    Example:
        >>> import io, tarfile, tempfile
        >>> buffer = io.BytesIO()
        >>> with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ...     tar.addfile(tarfile.TarInfo("pkg/empty.txt"))
        >>> dest = Path(tempfile.mkdtemp())
        >>> extract_stream(io.BytesIO(buffer.getvalue()), dest,
        ...                format=ArchiveFormat.TAR_GZ, name="pkg.tar.gz", strip_components=1)
        ExtractResult(files=1, dirs=0, symlinks=0, total_bytes=0)

    Raises:
        UnsafeArchiveError: a member is unsafe, or a limit is exceeded.
        ExtractError: anything else, chained to the cause (such as the
            download error a `GrowingFileReader` was failed with).
    """
    if format is ArchiveFormat.ZIP:
        raise ValueError("zip archives need a complete file: use extract_file()")
    with _failures(name):
        tree = SafeTree(dest, archive=name, limits=limits, strip_components=strip_components)
        compressed = CountingReader(reader)
        meter = ExpansionMeter(
            limits.max_ratio, compressed=lambda: compressed.count, refuse=tree.refuse
        )
        stream = decompressed(compressed, format, checksummed=checksummed)
        extract_tar(MeteredReader(stream, meter), tree)
        return tree.result()


def extract_file(
    path: Path,
    dest: Path,
    *,
    format: ArchiveFormat | None = None,
    name: str | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
    strip_components: int = 0,
) -> ExtractResult:
    """Extract the complete archive file at ``path`` (any format) into ``dest``.

    The format is detected from ``name`` (default: the file's name) and the
    file's first bytes unless given. ``dest`` is as for `extract_stream`.

    Example:
        >>> import tempfile, zipfile
        >>> work = Path(tempfile.mkdtemp())
        >>> with zipfile.ZipFile(work / "a.whl", "w") as z:
        ...     z.writestr("pkg/__init__.py", "")
        >>> (work / "out").mkdir()
        >>> extract_file(work / "a.whl", work / "out").files
        1

    Raises:
        UnsafeArchiveError: a member is unsafe, or a limit is exceeded.
        ExtractError: the format is unknown or doubtful, or anything else
            failed (chained to the cause).
    """
    name = name or path.name
    with _failures(name), open(path, "rb") as file:
        if format is None:
            format = detect_format(name=name, head=file.read(HEAD_SIZE))
            file.seek(0)
        if format is not ArchiveFormat.ZIP:
            return extract_stream(
                file,
                dest,
                format=format,
                name=name,
                limits=limits,
                strip_components=strip_components,
            )
        tree = SafeTree(dest, archive=name, limits=limits, strip_components=strip_components)
        size = os.fstat(file.fileno()).st_size
        meter = ExpansionMeter(limits.max_ratio, compressed=lambda: size, refuse=tree.refuse)
        extract_zip(path, tree, meter)
        return tree.result()


@contextmanager
def _failures(name: str) -> Iterator[None]:
    """Turn any failure that is not already an ExtractError into one, chained to it."""
    try:
        yield
    except ExtractError:
        raise
    except Exception as error:
        raise ExtractError(f"Failed to extract archive {name!r}") from error
