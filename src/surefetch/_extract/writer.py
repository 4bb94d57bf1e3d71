"""Writing archive members into a destination directory, safely.

Every format hands its members to a `SafeTree`, which alone touches the
disk. It relies on this invariant: every symlink it creates resolves inside
the destination, whatever members come later. A link target may only climb
(``..``) before it descends, and the climb is measured from the link's real
directory, which never changes afterwards; so later members cannot redirect
a link that was checked when it was made. Given that, a path inside the
destination leads inside it, and files are opened with ``O_EXCL`` (and
``O_NOFOLLOW``) after removing whatever an earlier member left there, so
that a duplicate member replaces a link rather than writing through it.

The destination must be a fresh directory that nothing else writes to while
the extraction runs.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import NoReturn

from surefetch._errors import UnsafeArchiveError
from surefetch._extract.limits import ExtractLimits, ExtractResult, ReadableInto

COPY_BUFFER_SIZE = 1 << 20

_CREATE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
# Backslashes separate names on Windows, and some zip tools write them.
_SEPARATORS = re.compile(r"[/\\]")
_DRIVE = re.compile(r"[A-Za-z]:")
_UTIME_BY_FD = os.utime in os.supports_fd
# Times a signed 64-bit count of nanoseconds holds (the years 1677 to 2262):
# every platform's utime takes them, and st_mtime_ns can express them.
_MTIME_LIMIT = float((1 << 63) // 10**9 - 1)
# Characters of a member name an error shows in full; a longer one is shortened.
_SHOWN_NAME = 200


class _BadName(Exception):
    """A member name or link target that must be refused; the message is the reason."""


def sane_mtime(mtime: float | None) -> float | None:
    """A member's time as the disk can take it: clamped into the years 1677 to 2262.

    An archive's time is only a hint, and a pax header can say anything
    (``1e400`` reads as infinity): a time out of range is clamped rather than
    failing the archive, and one that is not a number at all (NaN) is no
    time, so the file keeps the time it was written at.

    Example:
        >>> sane_mtime(float("inf")) == _MTIME_LIMIT, sane_mtime(float("nan")), sane_mtime(5.0)
        (True, None, 5.0)
    """
    if mtime is None or math.isnan(mtime):
        return None
    return min(max(mtime, -_MTIME_LIMIT), _MTIME_LIMIT)


def split_name(name: str) -> list[str]:
    """The components of a member name, refusing absolute paths and ``..``.

    ``.`` and empty components are dropped, so ``./a//b`` is ``["a", "b"]``.

    Example:
        >>> split_name("./pkg-1.0/src\\\\main.c")
        ['pkg-1.0', 'src', 'main.c']
    """
    if not name:
        raise _BadName("has an empty name")
    if "\0" in name:
        raise _BadName("has a NUL character in its name")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise _BadName("has an absolute path")
    parts = [part for part in _SEPARATORS.split(name) if part not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise _BadName("escapes the destination")
    if ".." in parts:
        # Harmless on its own, but GNU tar refuses it too, and no tool writes it.
        raise _BadName("has '..' in its path")
    return parts


def _check_link_target(target: str) -> int:
    """How many levels a symlink target climbs, refusing the forms that could escape."""
    if not target:
        raise _BadName("is a symlink with an empty target")
    if "\0" in target:
        raise _BadName("is a symlink with a NUL character in its target")
    if target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise _BadName(f"is a symlink to the absolute path {target!r}")
    climb = 0
    descended = False
    for part in _SEPARATORS.split(target):
        if part == "..":
            if descended:
                # "a/.." depends on what "a" is when the link is followed, and
                # a later member can make "a" a link to somewhere else.
                raise _BadName(f"is a symlink to {target!r}, with '..' after a name")
            climb += 1
        elif part not in ("", "."):
            descended = True
    return climb


class SafeTree:
    """Writes members into ``dest``, refusing anything that could leave it.

    Member names are split on ``/`` and ``\\``; ``strip_components`` leading
    components are then removed (``.`` does not count), and a member with
    nothing left is skipped. Files get their mode's permission bits with
    owner read/write added (setuid, setgid and sticky dropped; the process
    umask applies, as with tar); directories get 0o755 (same umask).

    Example:
        >>> import io, tempfile
        >>> tree = SafeTree(Path(tempfile.mkdtemp()), archive="x.tar", limits=ExtractLimits())
        >>> tree.file("pkg/a.txt", mode=0o644, size=2, source=io.BytesIO(b"hi"), mtime=None)
        >>> tree.result()
        ExtractResult(files=1, dirs=1, symlinks=0, total_bytes=2)
    """

    def __init__(
        self, dest: Path, *, archive: str, limits: ExtractLimits, strip_components: int = 0
    ) -> None:
        if strip_components < 0:
            raise ValueError(f"strip_components must be 0 or more, not {strip_components}")
        self._root = os.path.realpath(dest)
        self._archive = archive
        self._limits = limits
        self._strip = strip_components
        # Member directory (joined parts) -> its real path, so that the common
        # case, a member in a directory already seen, costs no system call.
        self._dirs: dict[str, str] = {"": self._root}
        self._buffer = memoryview(bytearray(COPY_BUFFER_SIZE))
        self.member: str | None = None
        self._members = 0
        self._files = 0
        self._dirs_made = 0
        self._symlinks = 0
        self._total_bytes = 0

    def result(self) -> ExtractResult:
        return ExtractResult(
            files=self._files,
            dirs=self._dirs_made,
            symlinks=self._symlinks,
            total_bytes=self._total_bytes,
        )

    def refuse(self, reason: str) -> NoReturn:
        """Refuse the archive because of the current member (if any).

        A name of thousands of characters (an absurdly deep one) is shown by
        its ends, so that the error stays readable.
        """
        member = self.member
        if member is not None and len(member) > _SHOWN_NAME:
            member = f"{member[: _SHOWN_NAME // 2]}...{member[-_SHOWN_NAME // 4 :]}"
        raise UnsafeArchiveError(archive=self._archive, member=member, reason=reason)

    def expect(self, *, members: int, total_bytes: int) -> None:
        """Refuse upfront an archive whose index already announces too much (zip)."""
        self._check_count(members)
        limit = self._limits.max_total_bytes
        if total_bytes > limit:
            raise UnsafeArchiveError(
                archive=self._archive,
                member=None,
                reason=f"it holds {total_bytes} bytes, more than the limit of {limit} bytes",
            )

    # Members -------------------------------------------------------------------

    def file(
        self, name: str, *, mode: int, size: int, source: ReadableInto, mtime: float | None
    ) -> None:
        """Write a regular file of ``size`` bytes from ``source`` (``mtime``: see `sane_mtime`)."""
        parts = self._begin(name)
        limit = self._limits.max_member_bytes
        if limit is not None and size > limit:
            self.refuse(f"is {size} bytes, more than the limit of {limit} bytes per file")
        self._check_total(self._total_bytes + size)
        if parts is None:
            return
        path = os.path.join(self._parent(parts), parts[-1])
        file_mode = (mode & 0o777) | 0o600
        mtime = sane_mtime(mtime)
        try:
            fd = os.open(path, _CREATE_FLAGS, file_mode)
        except FileExistsError:
            self._remove(path)
            fd = os.open(path, _CREATE_FLAGS, file_mode)
        try:
            self._total_bytes += self._copy(source, fd, path)
            if mtime is not None and _UTIME_BY_FD:
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
        if mtime is not None and not _UTIME_BY_FD:
            os.utime(path, (mtime, mtime))
        self._files += 1

    def directory(self, name: str) -> None:
        """Make a directory (and its parents)."""
        parts = self._begin(name)
        if parts is None:
            return
        key = "/".join(parts)
        if key in self._dirs:
            return
        path = os.path.join(self._parent(parts), parts[-1])
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                self._remove(path)
                os.mkdir(path, 0o755)
                self._dirs_made += 1
        else:
            self._dirs_made += 1
        self._remember(key, path)

    def symlink(self, name: str, target: str) -> None:
        """Make a symlink whose target resolves inside the destination."""
        parts = self._begin(name)
        try:
            climb = _check_link_target(target)
        except _BadName as refusal:
            self.refuse(str(refusal))
        if parts is None:
            return
        parent = self._parent(parts)
        depth = 0 if parent == self._root else parent.count(os.sep) - self._root.count(os.sep)
        if climb > depth or not self._inside(os.path.realpath(os.path.join(parent, target))):
            self.refuse(f"is a symlink to {target!r}, which leads outside the destination")
        path = os.path.join(parent, parts[-1])
        try:
            os.symlink(target, path)
        except FileExistsError:
            self._remove(path)
            os.symlink(target, path)
        self._symlinks += 1

    def hardlink(self, name: str, target: str) -> None:
        """Make a hard link to a regular file extracted earlier (``target`` is a member name)."""
        parts = self._begin(name)
        try:
            target_parts = split_name(target)[self._strip :]
        except _BadName as refusal:
            self.refuse(f"is a hard link to {target!r}, which {refusal}")
        if parts is None:
            return
        if not target_parts:
            self.refuse(f"is a hard link to {target!r}, which strip_components removes")
        source_dir = os.path.realpath(os.path.join(self._root, *target_parts[:-1]))
        source = os.path.join(source_dir, target_parts[-1])
        if not (self._inside(source_dir) and _is_regular_file(source)):
            self.refuse(
                f"is a hard link to {target!r}, which is not a regular file extracted before it"
            )
        path = os.path.join(self._parent(parts), parts[-1])
        try:
            os.link(source, path)
        except FileExistsError:
            self._remove(path)
            os.link(source, path)
        self._files += 1

    def special(self, name: str, reason: str) -> NoReturn:
        """Refuse a member that is not a file, directory or link (``reason`` says what it is)."""
        self._begin(name)
        self.refuse(reason)

    # Helpers -------------------------------------------------------------------

    def _begin(self, name: str) -> list[str] | None:
        """Count and check a member; its path after strip_components, or None to skip it."""
        self.member = name
        self._members += 1
        self._check_count(self._members)
        try:
            parts = split_name(name)
        except _BadName as refusal:
            self.refuse(str(refusal))
        parts = parts[self._strip :]
        if len(parts) > self._limits.max_depth:
            self._refuse_depth(len(parts))
        return parts or None

    def _refuse_depth(self, depth: int) -> NoReturn:
        self.refuse(
            f"is {depth} levels deep, deeper than the limit of {self._limits.max_depth} levels"
        )

    def _check_count(self, members: int) -> None:
        if members > self._limits.max_files:
            raise UnsafeArchiveError(
                archive=self._archive,
                member=None,
                reason=f"it has more than {self._limits.max_files} members",
            )

    def _check_total(self, total_bytes: int) -> None:
        if total_bytes > self._limits.max_total_bytes:
            self.refuse(f"takes the archive past the limit of {self._limits.max_total_bytes} bytes")

    def _inside(self, real_path: str) -> bool:
        return real_path == self._root or real_path.startswith(self._root + os.sep)

    def _parent(self, parts: list[str]) -> str:
        """The real directory that will hold ``parts[-1]``, made as needed."""
        known = self._dirs.get("/".join(parts[:-1]))
        if known is not None:
            return known
        path = self._root
        for index in range(len(parts) - 1):
            key = "/".join(parts[: index + 1])
            known = self._dirs.get(key)
            if known is None:
                known = self._enter(path, parts[index], key)
                self._remember(key, known)
            path = known
            # Through a symlink the real depth can exceed the name's (a link to a
            # deep directory, then names below it): count where it really is.
            depth = path.count(os.sep) - self._root.count(os.sep) + len(parts) - 1 - index
            if depth > self._limits.max_depth:
                self._refuse_depth(depth)
        return path

    def _remember(self, key: str, path: str) -> None:
        # Only directories reached without a symlink are cached: then the
        # cached path is the literal one, and only removing that very
        # directory (see _remove) can make the entry wrong.
        if path == os.path.join(self._root, *key.split("/")):
            self._dirs[key] = path

    def _enter(self, parent: str, name: str, key: str) -> str:
        """The real path of directory ``name`` in ``parent``, made if missing."""
        path = os.path.join(parent, name)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                # A link made by an earlier member: checked when it was made,
                # and checked again before anything is written through it.
                path = os.path.realpath(path)
                if not self._inside(path):
                    self.refuse(f"would be written through the symlink {key!r}")
                if not os.path.isdir(path):
                    raise NotADirectoryError(f"{key!r} is a symlink to a non-directory") from None
            elif not stat.S_ISDIR(mode):
                raise NotADirectoryError(f"{key!r} is not a directory") from None
        else:
            self._dirs_made += 1
        return path

    def _remove(self, path: str) -> None:
        """Remove what an earlier member left at ``path``, so that this one replaces it.

        A non-empty directory is not removed: the OSError fails the extraction.
        """
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)
            self._dirs.pop(os.path.relpath(path, self._root).replace(os.sep, "/"), None)
        else:
            os.unlink(path)

    def _copy(self, source: ReadableInto, fd: int, path: str) -> int:
        buffer = self._buffer
        copied = 0
        while count := source.readinto(buffer):
            chunk = buffer[:count]
            try:
                while chunk:
                    chunk = chunk[os.write(fd, chunk) :]
            except OSError as error:
                # A failed write names no file; say which one (a full disk, say).
                if error.filename is None:
                    error.filename = path
                raise
            copied += count
        return copied


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
