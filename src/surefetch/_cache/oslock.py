"""The per-key lock taken with ``flock(2)`` directly, on POSIX: open, lock; unlock, close.

`surefetch._cache.lock` holds an OS lock on a file under ``<root>/locks``.
filelock takes it in about a millisecond for a new lock file (it stats the
path, probes the directory for ``flock`` with a temporary file, tracks forks),
several times what the lock itself costs, and a loop of small downloads
takes a new key's lock on every call. Here the same lock is taken in three
system calls. It is the same lock: filelock takes ``flock`` on the same file
too, so a process that locks with filelock (an older surefetch, `try_hold`)
and one that locks here exclude each other.

Where ``flock`` is not supported (some network filesystems answer ``ENOSYS``,
``EOPNOTSUPP`` or ``ENOLCK``), or the lock file cannot be opened,
`try_lock` raises `Unsupported` and the caller uses filelock, whose soft
lock and error messages cover those cases.

A process forked while it holds a lock gives the child a copy of the lock's
descriptor, which would keep the lock held after the parent died for as
long as the child lives; the child closes its copies at once (closing a
copy never releases the parent's lock: ``flock`` belongs to the open file,
which the parent still has open).
"""

from __future__ import annotations

import contextlib
import errno
import os

try:
    import fcntl
except ImportError:  # Windows: filelock's msvcrt lock is used instead
    fcntl = None  # type: ignore[assignment]

#: Whether this module can lock at all on this platform.
AVAILABLE = fcntl is not None and hasattr(fcntl, "flock")

_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_UNSUPPORTED = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL}
_CONTENDED = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}


class Unsupported(Exception):
    """This lock file cannot be locked here: use filelock for it."""


class Held:
    """A lock held by this process: its open descriptor."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd


# The locks this process holds, so that a forked child can close its copies.
_held: set[Held] = set()


def try_lock(path: str) -> Held | None:
    """Lock ``path`` (made if missing) if nobody holds it right now; None if somebody does.

    Raises `Unsupported` when the file cannot be opened or the filesystem
    has no ``flock``.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "a.lock")
        >>> held = try_lock(path)
        >>> try_lock(path) is None  # another descriptor: held, even in this process
        True
        >>> unlock(held)
    """
    if not AVAILABLE:
        raise Unsupported(path)
    try:
        # 0o666 less the umask, as filelock makes them: every user of a shared
        # cache can lock a key.
        fd = os.open(path, _FLAGS, 0o666)
    except OSError as error:
        raise Unsupported(path) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in _CONTENDED:
            return None
        if error.errno in _UNSUPPORTED:
            raise Unsupported(path) from error
        raise
    except BaseException:
        os.close(fd)
        raise
    held = Held(fd)
    _held.add(held)
    return held


def unlock(held: Held) -> None:
    """Release ``held``; nothing if a fork made this process a child that closed it."""
    fd, held.fd = held.fd, -1
    _held.discard(held)
    if fd < 0:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _close_after_fork() -> None:
    """In a forked child: close the parent's lock descriptors without unlocking them."""
    for held in list(_held):
        fd, held.fd = held.fd, -1
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_after_fork)
