"""The ``surefetch`` logger, with `logging` imported only once a record can be shown.

Importing `logging` (with traceback, linecache, tokenize, string and weakref)
costs about as much as starting Python, and a download logs INFO records
that, by default, nobody sees. Until `logging` is imported, nobody can have
configured it, and its defaults (the root logger at WARNING, the last-resort
handler) drop every record below WARNING. So such a record is dropped here
without importing `logging`, which is exactly what `logging` would have done
with it. A warning or worse, and every record once `logging` is imported (by
the program, a test or the command line's ``-v``), goes to
``logging.getLogger("surefetch")`` as before, with its caller's line.

The command line sets up its handler the same way, late: `defer_setup`
registers the set-up, which runs just before the first record passed on.
"""

from __future__ import annotations

import sys
from _thread import allocate_lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from typing import Any

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
NAME = "surefetch"

_setup: Callable[[], None] | None = None
_setup_lock = allocate_lock()
_found: logging.Logger | None = None


def defer_setup(setup: Callable[[], None] | None) -> Callable[[], None] | None:
    """Run ``setup`` just before the first record passed on to `logging` (None: none).

    Returns the set-up it replaces, still to run, so that it can be put back.

    Example:
        >>> import logging  # the program logs: every record is passed on
        >>> ran = []
        >>> defer_setup(lambda: ran.append("set up"))
        >>> logger.debug("a record")
        >>> logger.debug("another")
        >>> ran
        ['set up']
    """
    global _setup
    with _setup_lock:
        previous, _setup = _setup, setup
    return previous


def _real(level: int) -> logging.Logger | None:
    """The logger a record of ``level`` goes to, or None when nothing can show it."""
    global _setup, _found
    if level < WARNING and "logging" not in sys.modules:
        return None
    if _setup is not None:
        # Under the lock, so that no thread passes a record on before the set-up is done.
        with _setup_lock:
            setup, _setup = _setup, None
            if setup is not None:
                setup()
    real = _found
    if real is None:
        import logging

        real = _found = logging.getLogger(NAME)  # the same object for the process's life
    return real


class Logger:
    """The subset of `logging.Logger` surefetch logs through, loading `logging` late.

    Example:
        >>> logger.isEnabledFor(DEBUG) in (True, False)
        True
    """

    __slots__ = ()

    def isEnabledFor(self, level: int) -> bool:
        real = _real(level)
        return real is not None and real.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        real = _real(level)
        if real is not None:
            # One frame more than logging.Logger.log counts: the record names our caller.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            real.log(level, msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.log(DEBUG, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.log(INFO, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.log(WARNING, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        kwargs.setdefault("exc_info", True)
        self.log(ERROR, msg, *args, **kwargs)


logger = Logger()
