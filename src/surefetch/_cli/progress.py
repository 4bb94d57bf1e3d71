"""Progress bars on stderr: one line per active download, then a total.

rich is imported only when a bar is drawn (after half a second), so fast
downloads and cache hits never pay for it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

# The widest text rich's columns print: "274.0/274.0 MB", "999.9 kB/s", "10:00:00".
_SIZE_WIDTH = 14
_SPEED_WIDTH = 10
_ETA_WIDTH = 8
_BAR_WIDTH = 40
_MIN_BAR_WIDTH = 5


def terminal_width(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to: ``COLUMNS`` first, then the tty, then 80.

    Not stdout's: the bar is drawn on stderr, and stdout is often a pipe.

    Example:
        >>> import io, os
        >>> os.environ.get("COLUMNS") is not None or terminal_width(io.StringIO()) == 80
        True
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def bar_layout(width: int, name_length: int) -> tuple[int, int, bool]:
    """(name width, bar width, with time left) for one line of ``width`` columns.

    The size and speed always show; the bar narrows, then the time left goes,
    then the name is cut (rich ends it with an ellipsis), so the line never
    wraps. One column stays free: a line that fills the last column makes
    some terminals wrap.

    Example:
        >>> bar_layout(80, 60)
        (29, 14, True)
        >>> bar_layout(200, 60)
        (60, 40, True)
        >>> name, bar, eta = bar_layout(40, 60)
        >>> name + 1 + bar + 1 + 14 + 1 + 10 + (9 if eta else 0) <= 39
        True
    """
    room = width - 1 - (_SIZE_WIDTH + 1) - (_SPEED_WIDTH + 1)
    with_eta = room - (_ETA_WIDTH + 1) >= _MIN_BAR_WIDTH + 1 + min(name_length, 20)
    if with_eta:
        room -= _ETA_WIDTH + 1
    # room is for "name bar": the bar keeps a third of it at least (a sliver says nothing).
    bar = max(_MIN_BAR_WIDTH, min(_BAR_WIDTH, max(room // 3, room - 1 - name_length)))
    name = max(1, min(name_length, room - 1 - bar))
    return name, bar, with_eta


@dataclass
class _Row:
    description: str
    received: int = 0
    total: int | None = None
    task: Any = None
    finished: bool = False


class ProgressBars:
    """Bars on stderr for downloads running together: one line per active file, then a total.

    Each download reports through its own `row`; a finished file's line goes
    away, and a ``Total`` line sums them all when there are several. Nothing
    shows for the first half second, so fast downloads and cache hits stay
    quiet, and rich is imported only when a bar is drawn. It is drawn on
    stderr, whatever stdout is (``P=$(surefetch fetch URL)``), every line on
    one line of the terminal: a long name is cut with an ellipsis.

    Example:
        >>> bars = ProgressBars()
        >>> first, second = bars.row("a.whl"), bars.row("b.whl")
        >>> first(10, 100)  # within the first half second: nothing drawn
        >>> bars.close()
    """

    def __init__(self, *, delay: float = 0.5) -> None:
        self._started = time.monotonic()
        self._delay = delay
        self._rows: list[_Row] = []
        self._progress: Any = None
        self._total_task: Any = None

    def row(self, description: str) -> Callable[[int, int | None], None]:
        """A progress callback ``(received, total)`` for one download named ``description``."""
        row = _Row(description)
        self._rows.append(row)

        def update(received: int, total: int | None) -> None:
            row.received, row.total = received, total
            self._update(row)

        return update

    def _update(self, row: _Row) -> None:
        if self._progress is None:
            if time.monotonic() - self._started < self._delay:
                return
            self._progress = self._make()
            self._progress.start()
        progress = self._progress
        several = len(self._rows) > 1
        added = False
        if several and row.total is not None and row.received >= row.total:
            # One line per active file: a finished one goes (a lone bar stays till close).
            if row.task is not None:
                progress.remove_task(row.task)
                row.task = None
            row.finished = True
        elif row.task is None and not row.finished:
            row.task = progress.add_task(row.description, total=row.total)
            added = True
            if self._total_task is not None:
                # Tasks show in the order they were added: the total stays last.
                progress.remove_task(self._total_task)
                self._total_task = None
        if row.task is not None:
            progress.update(row.task, completed=row.received, total=row.total)
        if several:
            totals = [r.total for r in self._rows]
            whole = None if None in totals else sum(t for t in totals if t is not None)
            received = sum(r.received for r in self._rows)
            if self._total_task is None:
                self._total_task = progress.add_task("Total", total=whole)
            progress.update(self._total_task, completed=received, total=whole)
        if added:
            # A new line shows at once, not at the next tick: a quick file is seen too.
            progress.refresh()

    def _make(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.table import Column

        width = terminal_width(sys.stderr)
        longest = max(len(row.description) for row in self._rows)
        name, bar, with_eta = bar_layout(width, longest)

        def fixed(size: int, justify: Any = "right") -> Column:
            return Column(width=size, no_wrap=True, overflow="ellipsis", justify=justify)

        columns: list[Any] = [
            # markup=False: the name comes from a URL, and rich must not read it as markup.
            TextColumn(
                "{task.description}",
                style="progress.description",
                markup=False,
                table_column=fixed(name, "left"),
            ),
            BarColumn(bar_width=bar, table_column=fixed(bar, "left")),
            DownloadColumn(table_column=fixed(_SIZE_WIDTH)),
            TransferSpeedColumn(table_column=fixed(_SPEED_WIDTH)),
        ]
        if with_eta:
            columns.append(TimeRemainingColumn(table_column=fixed(_ETA_WIDTH)))
        # Log lines printed above the bar are soft-wrapped by the terminal, as
        # without a bar, not broken into two lines by rich.
        console = Console(file=sys.stderr, width=width, soft_wrap=True)
        return Progress(*columns, console=console, transient=True)

    def close(self) -> None:
        """Take the bars off the screen (they are transient)."""
        if self._progress is not None:
            self._progress.stop()


class ProgressBar:
    """One download's bar: `ProgressBars` with a single row.

    Example:
        >>> bar = ProgressBar("a.whl")
        >>> bar(10, 100)  # within the first half second: nothing drawn
        >>> bar.close()
    """

    def __init__(self, description: str, *, delay: float = 0.5) -> None:
        self._bars = ProgressBars(delay=delay)
        self._row = self._bars.row(description)

    def __call__(self, received: int, total: int | None) -> None:
        self._row(received, total)

    def close(self) -> None:
        """Take the bar off the screen."""
        self._bars.close()
