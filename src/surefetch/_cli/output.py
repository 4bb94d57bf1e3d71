"""What the command line prints: errors with their causes, and logs.

Progress bars live in `surefetch._cli.progress`.

Expected failures print ``error: <what failed>`` and one ``  Caused by:``
line per link of the cause chain, with credentials scrubbed and control
characters escaped (`shown`), and map to an exit code (see
`surefetch._cli.exit_codes`); they never print a traceback.
Every command reports through `run_reporting` and sets up the ``surefetch``
logger with `configure_logging`; `surefetch._cli.main` puts the logger back
as it found it (`logging_left_as_found`) when the command returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from surefetch._cli.exit_codes import EXIT_FAILED, EXIT_USAGE
from surefetch._cli.interrupts import report_interrupted
from surefetch._errors import ConfigError, RetriesExhausted, SurefetchError, printable
from surefetch._log import NAME, defer_setup
from surefetch._retry.classify import iter_chain
from surefetch._url import Redactor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from surefetch._retry.events import RetryEvent, RetryHook

LOGGER_NAME = NAME


def _text(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if (
        isinstance(error, OSError)
        and error.filename is not None
        and str(error.filename) not in text
    ):
        text = f"{text}: {error.filename}"
    name = type(error).__name__
    if not text:
        return name
    if isinstance(error, SurefetchError):
        return text
    return f"{name}: {text}" if not isinstance(error, OSError) else text


def cause_chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes, outermost first, following ``__cause__`` then ``__context__``."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return chain


def format_error(error: BaseException, *, redactor: Redactor, verbose: bool = False) -> str:
    """The lines printed for an expected failure.

    Example:
        >>> try:
        ...     try:
        ...         raise ConnectionResetError(104, "Connection reset by peer")
        ...     except OSError as e:
        ...         raise SurefetchError("Failed to download https://h/x") from e
        ... except SurefetchError as err:
        ...     print(format_error(err, redactor=Redactor()))
        error: Failed to download https://h/x
          Caused by: [Errno 104] Connection reset by peer
    """
    chain = cause_chain(error)
    lines = [f"error: {_text(chain[0])}"]
    lines += [f"  Caused by: {_text(link)}" for link in chain[1:]]
    for link in chain:
        # What a failed subprocess (a build backend) said last: line by line,
        # since a person reads it as it was printed.
        said = getattr(link, "surefetch_output", ())
        if said:
            lines.append("  Last output:")
            lines += [f"    {line}" for line in said]
    if verbose:
        for link in iter_chain(error):
            if isinstance(link, RetriesExhausted):
                lines.append("  Attempts:")
                for attempt in link.attempts:
                    wait = "" if attempt.wait is None else f", then waited {attempt.wait:.2f}s"
                    lines.append(
                        f"    {attempt.number}. at {attempt.elapsed:.2f}s: "
                        f"{_text(attempt.error)}{wait}"
                    )
                break
    return "\n".join(shown(line, redactor=redactor) for line in lines)


# The longest line an error or a log record prints. Beyond it a message is
# junk (a garbage reply quoted back), and a person reads none of it.
LINE_LIMIT = 1000


def shown(text: str, *, redactor: Redactor) -> str:
    r"""``text`` as the command line prints it: secrets scrubbed, then made inert and capped.

    Scrubbing comes first, so that a cut never leaves half a secret behind;
    then control characters are escaped (`printable`), since error messages
    and log records quote what servers sent.

    Example:
        >>> redactor = Redactor(["https://u:pw1@h/"])
        >>> print(shown("HTTP 503 \x1b]0;pwned\x07 from https://u:pw1@h/", redactor=redactor))
        HTTP 503 \x1b]0;pwned\x07 from https://u:***@h/
    """
    return printable(redactor.scrub(text), limit=LINE_LIMIT)


def exit_code_for(error: BaseException) -> int:
    """2 for a bad setting or usage, 1 for any other expected failure."""
    return EXIT_USAGE if isinstance(error, ConfigError) else EXIT_FAILED


def run_reporting(
    action: Callable[[], int], *, redactor: Redactor, verbose: bool, stream: TextIO | None = None
) -> int:
    """Run ``action``; print expected failures and turn them into exit codes."""
    out = stream or sys.stderr
    try:
        return action()
    except KeyboardInterrupt:
        return report_interrupted(out)
    except (SurefetchError, OSError) as error:
        print(format_error(error, redactor=redactor, verbose=verbose), file=out)
        return exit_code_for(error)


def _retry_line(redactor: Redactor) -> RetryHook:
    """At the default verbosity: each retry of a download as one short warning line.

    A failing connection must not be seconds of silence before the error;
    pip prints a line per retry too. The full record is for ``-v``, and so is
    a filesystem retry, which rides out a scanner's lock.
    """

    def say(event: RetryEvent) -> None:
        if event.operation.startswith(("GET ", "HEAD ")):
            line = (
                f"warning: {event.reason} (attempt {event.retry} of {event.retries + 1}); "
                f"retrying in {event.wait:.1f}s"
            )
            sys.stderr.write(shown(line, redactor=redactor) + "\n")
            sys.stderr.flush()

    return say


# What `logging_left_as_found` undoes when the command returns, newest last.
_undo: list[Callable[[], None]] = []


def configure_logging(*, verbosity: int, redactor: Redactor) -> None:
    """Send the ``surefetch`` logger to stderr: warnings by default, INFO with -v.

    ``verbosity`` is -1 for errors only (``-q``), 0 by default, 1 for INFO
    (``-v``) and 2 or more for DEBUG; at 0, each retry of a download is a
    short warning line too. It replaces the logger's handlers and stops
    propagation, for the rest of the command: `surefetch._cli.main` restores
    them (`logging_left_as_found`). Without ``-v``, and while nothing has
    imported `logging`, the handler is set up only when a record is first
    passed on (`surefetch._log`): a download with nothing to say never
    imports `logging`.
    """
    if verbosity == 0:
        from surefetch._retry.events import add_retry_hook

        _undo.append(add_retry_hook(_retry_line(redactor)))

    def set_up() -> None:
        from surefetch._cli.log_handler import set_up_handler

        set_up_handler(verbosity=verbosity, scrub=lambda text: shown(text, redactor=redactor))

    if verbosity > 0 or "logging" in sys.modules:
        set_up()
    else:
        previous = defer_setup(set_up)

        def put_back() -> None:
            defer_setup(previous)

        _undo.append(put_back)


@contextmanager
def logging_left_as_found() -> Iterator[None]:
    """Put the ``surefetch`` logger's handlers, level and propagation back on exit.

    `configure_logging` changes them for one command; `main` runs the command
    inside this, so a program (or a test) that calls ``main()`` keeps its own
    logging set-up. Handlers added meanwhile are closed, and the retry hook
    and the set-up still deferred are dropped. Where `logging` was not
    imported on entry, nothing had set the logger up: it is left as new.

    Example:
        >>> import logging
        >>> logger = logging.getLogger("surefetch")
        >>> before = (logger.handlers[:], logger.level, logger.propagate)
        >>> with logging_left_as_found():
        ...     configure_logging(verbosity=2, redactor=Redactor())
        >>> (logger.handlers[:], logger.level, logger.propagate) == before
        True
    """
    undone_from = len(_undo)
    found = _logger_state() if "logging" in sys.modules else None
    try:
        yield
    finally:
        while len(_undo) > undone_from:
            _undo.pop()()
        if "logging" in sys.modules:
            _put_logger_back(found)


def _logger_state() -> tuple[list[Any], int, bool, bool]:
    import logging

    logger = logging.getLogger(LOGGER_NAME)
    return logger.handlers[:], logger.level, logger.propagate, logger.disabled


def _put_logger_back(state: tuple[list[Any], int, bool, bool] | None) -> None:
    import logging

    handlers, level, propagate, disabled = state or ([], logging.NOTSET, True, False)
    logger = logging.getLogger(LOGGER_NAME)
    added = [handler for handler in logger.handlers if handler not in handlers]
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate
    logger.disabled = disabled
    for handler in added:
        handler.close()
