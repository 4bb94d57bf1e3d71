"""The command line's log handler: records to the current stderr, scrubbed and inert.

Imported only once a record is to be shown (see `surefetch._log`), since it
imports `logging`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from surefetch._log import NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class _ScrubFilter(logging.Filter):
    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._scrub(record.getMessage())
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


def set_up_handler(*, verbosity: int, scrub: Callable[[str], str]) -> None:
    """Make the ``surefetch`` logger's one handler a stderr one, at ``verbosity``'s level.

    ``scrub`` makes each message printable (`surefetch._cli.output.shown`).
    """
    logger = logging.getLogger(NAME)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_ScrubFilter(scrub))
    logger.handlers[:] = [handler]
    logger.propagate = False
    if verbosity < 0:
        logger.setLevel(logging.ERROR)
    elif verbosity == 0:
        logger.setLevel(logging.WARNING)
    elif verbosity == 1:
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.DEBUG)
