"""SIGTERM handled as Ctrl-C is: the same clean stop, its own line and exit code.

A terminated command must leave what Ctrl-C leaves: a sound cache, the
partial download kept for a resume, one line on stderr. So SIGTERM is
turned into the SIGINT path (whatever handles SIGINT then, Python's or the
asyncio runner's, stops the work the same way), and remembered, so that the
line and the exit code (143, as a shell reports SIGTERM) say what happened.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from surefetch._cli.exit_codes import EXIT_INTERRUPTED, EXIT_TERMINATED, INTERRUPTED_MESSAGE

TERMINATED_MESSAGE = "error: terminated (SIGTERM)"

_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _terminated
    _terminated = True
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        raise KeyboardInterrupt  # nobody would hear a SIGINT: stop here
    signal.raise_signal(signal.SIGINT)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within, SIGTERM stops the command as Ctrl-C does; the old handler is put back after.

    Only in the main thread (elsewhere nothing changes: a program that embeds
    ``main()`` keeps its own handling).

    Example:
        >>> with sigterm_as_interrupt():
        ...     pass
    """
    global _terminated
    _terminated = False
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_interrupted(stream: TextIO | None = None) -> int:
    """Print the line for Ctrl-C or SIGTERM, whichever stopped the command; its exit code.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> report_interrupted(out), out.getvalue()
        (130, 'error: interrupted\\n')
    """
    out = stream or sys.stderr
    if _terminated:
        print(TERMINATED_MESSAGE, file=out)
        return EXIT_TERMINATED
    print(INTERRUPTED_MESSAGE, file=out)
    return EXIT_INTERRUPTED
