"""What one fetch did (for ``--json`` and for tests), and how progress is reported."""

from __future__ import annotations

from collections.abc import Callable


class DownloadStats:
    """What one fetch did, for ``--json`` and for tests.

    A plain class, not a dataclass: every miss imports it, and defining a
    dataclass costs about a millisecond of start-up.

    Example:
        >>> stats = DownloadStats()
        >>> stats.attempts += 1
        >>> stats.attempts, stats.urls_tried
        (1, [])
    """

    __slots__ = ("attempts", "caching", "resumed_bytes", "urls_tried")

    def __init__(self) -> None:
        self.attempts = 0
        self.resumed_bytes = 0
        self.urls_tried: list[str] = []
        # What the last response said about caching (`surefetch._cache.freshness.caching_headers`).
        self.caching: dict[str, str] = {}


ProgressCallback = Callable[[int, "int | None"], None]
"""Called as ``progress(received, total)`` while a body arrives."""
