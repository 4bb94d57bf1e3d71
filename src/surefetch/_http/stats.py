"""What one fetch did (for ``--json`` and for tests), and how progress is reported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class DownloadStats:
    """What one fetch did, for ``--json`` and for tests."""

    attempts: int = 0
    resumed_bytes: int = 0
    urls_tried: list[str] = field(default_factory=list)
    # What the last response said about caching (`surefetch._cache.freshness.caching_headers`).
    caching: dict[str, str] = field(default_factory=dict)


ProgressCallback = Callable[[int, "int | None"], None]
"""Called as ``progress(received, total)`` while a body arrives."""
