"""Walking a directory tree of any depth, never following a symbolic link: its size, its removal.

A tar.gz of 2,500 nested directories takes under 200 bytes, so the depth of
a tree is up to whoever made the archive. Recursion (``shutil.rmtree`` on
Python < 3.13, ``os.walk`` < 3.13) stops at the interpreter's recursion
limit, and the paths of such a tree outgrow PATH_MAX (4096 bytes on Linux),
so a walk by path fails with "File name too long" too. Both walks here keep
their own stack and, where the platform allows (POSIX), work relative to
open directories: every name is opened with ``O_NOFOLLOW`` relative to its
parent, so neither the depth nor a symlink swapped in during the walk can
lead anywhere else.

Only a bounded number of directories stays open (`MAX_OPEN`), so the file
descriptor limit does not bound the depth either: past it, the shallower
levels are closed and reopened on the way back through ``..``, checked to
be the very directory that was left (device and inode), as GNU ``fts`` does.

Elsewhere (Windows) the walk goes by path, with the same stack; a reparse
point (a symlink or a junction) is removed, never entered.

These are single attempts: `surefetch._fs.ops` retries them.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

#: How many directories a walk keeps open at most; deeper levels are reopened through "..".
MAX_OPEN = 64

_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
# Everything the walk by descriptor needs; without it (Windows), the walk goes by path.
BY_DESCRIPTOR = (
    {os.open, os.stat, os.unlink, os.rmdir} <= os.supports_dir_fd
    and os.scandir in os.supports_fd
    and hasattr(os, "O_DIRECTORY")
    and hasattr(os, "O_NOFOLLOW")
)
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)


@dataclass
class _Level:
    """One directory of the walk: its name in the parent, identity, descriptor, what is left."""

    name: str
    dev: int
    ino: int
    fd: int | None
    subdirs: list[str] = field(default_factory=list)


class _Walk:
    """A depth-first walk below ``root`` (a directory), relative to open descriptors.

    ``remove`` removes everything, bottom up; otherwise the walk only adds up
    the sizes of what is not a directory.
    """

    def __init__(self, root: str, *, remove: bool) -> None:
        self.root = root
        self.remove = remove
        self.size = 0
        self.stack: list[_Level] = []
        self.first_open = 0  # levels below this index have their descriptor closed

    def run(self) -> int:
        try:
            top = self._open(None, self.root)
        except FileNotFoundError:
            return 0
        self.stack.append(top)
        try:
            self._scan(top)
            while self.stack:
                self._step()
        except OSError as error:
            self._locate(error)
            raise
        finally:
            for level in self.stack[self.first_open :]:
                if level.fd is not None:
                    os.close(level.fd)
        return self.size

    def _step(self) -> None:
        level = self.stack[-1]
        fd = level.fd
        assert fd is not None
        if level.subdirs:
            name = level.subdirs.pop()
            try:
                child = self._open(fd, name)
            except FileNotFoundError:
                return  # removed by someone else meanwhile
            except NotADirectoryError:
                # Replaced by a file or a symlink since it was listed: not entered.
                self._leaf(fd, name)
                return
            self.stack.append(child)
            self._bound_open()
            self._scan(child)
            return
        parent = self.stack[-2] if len(self.stack) > 1 else None
        if parent is not None and parent.fd is None:
            parent.fd = self._reopen(fd, parent)
            self.first_open = len(self.stack) - 2
        self.stack.pop()
        level.fd = None
        os.close(fd)
        if not self.remove:
            return
        if parent is None:
            os.rmdir(self.root)
            return
        parent_fd = parent.fd
        assert parent_fd is not None
        _writable(parent_fd, lambda: os.rmdir(level.name, dir_fd=parent_fd))

    def _open(self, parent: int | None, name: str) -> _Level:
        """Open directory ``name`` (in ``parent``, or a path) without following a symlink."""
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as error:
            if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name) from None
            raise
        st = os.fstat(fd)
        return _Level(name, st.st_dev, st.st_ino, fd)

    def _scan(self, level: _Level) -> None:
        """List ``level``: remember its subdirectories, and take in everything else."""
        fd = level.fd
        assert fd is not None
        with os.scandir(fd) as entries:
            items = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for name, is_dir in items:
            if is_dir:
                level.subdirs.append(name)
            else:
                self._leaf(fd, name)

    def _leaf(self, parent: int, name: str) -> None:
        try:
            if self.remove:
                _writable(parent, lambda: os.unlink(name, dir_fd=parent))
            else:
                self.size += os.stat(name, dir_fd=parent, follow_symlinks=False).st_size
        except FileNotFoundError:
            pass

    def _bound_open(self) -> None:
        while len(self.stack) - self.first_open > MAX_OPEN:
            level = self.stack[self.first_open]
            assert level.fd is not None
            os.close(level.fd)
            level.fd = None
            self.first_open += 1

    def _reopen(self, child_fd: int, parent: _Level) -> int:
        """``parent``'s descriptor again, through ``..`` of its child, if it is still it."""
        fd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (parent.dev, parent.ino):
            os.close(fd)
            # EBUSY: spurious, so the fs layer tries again, from the top.
            raise OSError(errno.EBUSY, "a directory was moved while the tree was walked")
        return fd

    def _locate(self, error: OSError) -> None:
        """Give an error about a name in the tree the whole path of that name."""
        names = [level.name for level in self.stack[1:]]
        filename = error.filename
        if isinstance(filename, str):
            if os.path.isabs(filename) or filename == self.root:
                return
            if filename != "..":
                names.append(filename)
        error.filename = os.path.join(self.root, *names)


def _writable(parent: int, call: Callable[[], object]) -> None:
    """Run ``call`` (a removal in ``parent``); if the directory is read-only, make it
    writable by its owner and run it again, as ``rm -rf`` of one's own tree would."""
    try:
        call()
    except PermissionError:
        mode = os.fstat(parent).st_mode
        if mode & stat.S_IWUSR and mode & stat.S_IXUSR:
            raise  # not a matter of the directory's mode
        os.fchmod(parent, stat.S_IMODE(mode) | stat.S_IRWXU)
        call()


# --- by path (where descriptors cannot be used) -------------------------------------


def unlink_path(path: str) -> None:
    """Remove the file ``path``; gone already is fine, read-only on Windows is fixed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        if sys.platform != "win32":
            raise
        # Windows refuses to delete read-only files, which archives and git checkouts contain.
        os.chmod(path, stat.S_IWRITE)
        os.unlink(path)


def _rmdir_path(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        if sys.platform != "win32":
            raise
        os.chmod(path, stat.S_IWRITE)  # a read-only directory, as for files above
        os.rmdir(path)


def _is_reparse_point(st: os.stat_result) -> bool:
    return bool(getattr(st, "st_file_attributes", 0) & _REPARSE_POINT)


def _walk_by_path(root: str, *, remove: bool) -> int:
    size = 0
    # (path, listed yet): a directory is listed on the way down, removed on the way up.
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        path, listed = stack.pop()
        if listed:
            if remove:
                _rmdir_path(path)
            continue
        stack.append((path, True))
        try:
            with os.scandir(path) as entries:
                items = list(entries)
        except FileNotFoundError:
            continue
        for entry in items:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) and not _is_reparse_point(st):
                stack.append((entry.path, False))
            elif remove:
                if stat.S_ISDIR(st.st_mode):
                    _rmdir_path(entry.path)  # a junction: removes the link, not its target
                else:
                    unlink_path(entry.path)
            else:
                size += st.st_size
    return size


# --- entry points ---------------------------------------------------------------------


def _walk(path: str, *, remove: bool) -> int:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode) or _is_reparse_point(st):
        if remove:
            if stat.S_ISDIR(st.st_mode):
                _rmdir_path(path)
            else:
                unlink_path(path)
        return st.st_size
    if BY_DESCRIPTOR:
        return _Walk(path, remove=remove).run()
    return _walk_by_path(path, remove=remove)


def remove_once(path: str) -> None:
    """Remove the tree, file or link at ``path`` (a missing one is fine), in one attempt.

    Iterative and relative to open directories where the platform allows, so
    any depth is removed; a symbolic link is removed, never followed; a
    read-only directory of the tree is made writable first.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "a" / "b").mkdir(parents=True)
        >>> remove_once(str(d))
        >>> d.exists()
        False
    """
    _walk(path, remove=True)


def tree_size(path: str) -> int:
    """Bytes of what is under ``path`` (or of ``path``) that is not a directory, links not
    followed; 0 when it is missing. Any depth, as `remove_once`.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "a").mkdir(); _ = (d / "a" / "f").write_bytes(b"123")
        >>> tree_size(str(d))
        3
    """
    return _walk(path, remove=False)
