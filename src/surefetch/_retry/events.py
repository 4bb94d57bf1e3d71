"""Retry events: one per retry, logged and handed to subscribed hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from surefetch._log import logger


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry about to happen.

    ``retry`` counts retries from 1 across the shared budget; ``retries`` is the
    budget's size; ``wait`` is the planned pause in seconds (also when no-wait
    mode skips it); ``reason`` says why the attempt failed.

    Example:
        >>> event = RetryEvent(operation="GET https://example.org/a", retry=1, retries=3,
        ...                    wait=1.5, reason="TimeoutError", error=TimeoutError())
        >>> event.retry, event.wait
        (1, 1.5)
    """

    operation: str
    retry: int
    retries: int
    wait: float
    reason: str
    error: BaseException

    @property
    def message(self) -> str:
        """The text logged for this event.

        Example:
            >>> event = RetryEvent(operation="GET https://example.org/a", retry=1, retries=3,
            ...                    wait=1.5, reason="TimeoutError", error=TimeoutError())
            >>> event.message
            'Retrying GET https://example.org/a after 1.50s (retry 1 of 3): TimeoutError'
        """
        return (
            f"Retrying {self.operation} after {self.wait:.2f}s "
            f"(retry {self.retry} of {self.retries}): {self.reason}"
        )


RetryHook = Callable[[RetryEvent], None]
_hooks: tuple[RetryHook, ...] = ()
_hooks_lock = threading.Lock()


def add_retry_hook(hook: RetryHook) -> Callable[[], None]:
    """Call ``hook`` with every `RetryEvent`; returns a function that unsubscribes it.

    Hooks run in the retrying thread, before the wait; an exception in a hook
    is logged and otherwise ignored, so a faulty hook cannot break a download.

    Example:
        >>> seen = []
        >>> unsubscribe = add_retry_hook(seen.append)
        >>> unsubscribe()
    """
    global _hooks
    with _hooks_lock:
        _hooks = (*_hooks, hook)

    def unsubscribe() -> None:
        global _hooks
        with _hooks_lock:
            remaining = list(_hooks)
            if hook in remaining:
                remaining.remove(hook)
            _hooks = tuple(remaining)

    return unsubscribe


def emit(event: RetryEvent) -> None:
    """Log ``event`` at INFO on the ``surefetch`` logger and call every hook."""
    logger.info(
        event.message,
        extra={
            "surefetch_operation": event.operation,
            "surefetch_retry": event.retry,
            "surefetch_wait": event.wait,
            "surefetch_retry_event": event,
        },
    )
    for hook in _hooks:
        try:
            hook(event)
        except Exception:
            logger.exception("retry hook %r failed", hook)
