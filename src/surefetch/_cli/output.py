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

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from surefetch._cli.exit_codes import EXIT_FAILED, EXIT_USAGE
from surefetch._cli.interrupts import report_interrupted
from surefetch._errors import ConfigError, RetriesExhausted, SurefetchError, printable
from surefetch._retry.classify import iter_chain
from surefetch._url import Redactor

LOGGER_NAME = "surefetch"


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


class _ScrubFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = shown(record.getMessage(), redactor=self._redactor)
        record.args = None
        return True


class _RetryWarning(logging.Filter):
    """At the default verbosity: warnings, and each retry as one short warning line.

    A failing connection must not be seconds of silence before the error;
    pip prints a line per retry too. The full record is for ``-v``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        retry = getattr(record, "surefetch_retry_event", None)
        if retry is None or not retry.operation.startswith(("GET ", "HEAD ")):
            return False  # a filesystem retry rides out a scanner's lock: -v tells it
        record.msg = (
            f"warning: {retry.reason} (attempt {retry.retry} of {retry.retries + 1}); "
            f"retrying in {retry.wait:.1f}s"
        )
        record.args = None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stderr`` as it is at that moment.

    While a progress bar is drawn, rich puts a proxy there that prints a
    line above the bar; a handler holding the stderr of its creation would
    write into the bar's line instead.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def configure_logging(*, verbosity: int, redactor: Redactor) -> None:
    """Send the ``surefetch`` logger to stderr: warnings by default, INFO with -v.

    ``verbosity`` is -1 for errors only (``-q``), 0 by default, 1 for INFO
    (``-v``) and 2 or more for DEBUG. It replaces the logger's handlers and
    stops propagation, for the rest of the command: `surefetch._cli.main`
    restores them (`logging_left_as_found`).
    """
    logger = logging.getLogger(LOGGER_NAME)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    if verbosity == 0:
        handler.addFilter(_RetryWarning())
    handler.addFilter(_ScrubFilter(redactor))
    logger.handlers[:] = [handler]
    logger.propagate = False
    if verbosity < 0:
        logger.setLevel(logging.ERROR)
    elif verbosity == 0:
        # INFO reaches the handler, whose filter lets warnings and retries alone through.
        logger.setLevel(logging.INFO)
    elif verbosity == 1:
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.DEBUG)


@contextmanager
def logging_left_as_found() -> Iterator[None]:
    """Put the ``surefetch`` logger's handlers, level and propagation back on exit.

    `configure_logging` changes them for one command; `main` runs the command
    inside this, so a program (or a test) that calls ``main()`` keeps its own
    logging set-up. Handlers added meanwhile are closed.

    Example:
        >>> logger = logging.getLogger("surefetch")
        >>> before = (logger.handlers[:], logger.level, logger.propagate)
        >>> with logging_left_as_found():
        ...     configure_logging(verbosity=2, redactor=Redactor())
        >>> (logger.handlers[:], logger.level, logger.propagate) == before
        True
    """
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level, propagate, disabled = (
        logger.handlers[:],
        logger.level,
        logger.propagate,
        logger.disabled,
    )
    try:
        yield
    finally:
        added = [handler for handler in logger.handlers if handler not in handlers]
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
        for handler in added:
            handler.close()
