"""The fault-injection seam: `surefetch.testing.inject_fs_faults` makes attempts fail here.

Every filesystem operation calls `inject` before each attempt when `hooks`
is not empty, so an injected error goes through the same retries, events
and final error as a real one; an empty tuple costs one truth test.
"""

from __future__ import annotations

from collections.abc import Callable

#: The operation names that fault hooks receive (and `inject_fs_faults` accepts).
OPERATIONS = ("rename", "replace", "persist_dir", "remove_tree", "write_atomic", "write_new")

FaultHook = Callable[[str, str, str | None], None]
# Called as hook(operation, path, other_path) before every attempt; a hook
# raises to make that attempt fail. Replaced (never mutated) by
# surefetch.testing, so a thread iterating it never sees it change.
hooks: tuple[FaultHook, ...] = ()


def inject(operation: str, path: str, other: str | None = None) -> None:
    for hook in hooks:
        hook(operation, path, other)
