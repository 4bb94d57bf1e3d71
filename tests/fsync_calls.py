"""Counting the fsyncs a piece of code makes, for the tests of durability."""

from __future__ import annotations

import os

import pytest


def counting_fsync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, every `os.fsync` is made and its descriptor appended to the list returned."""
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls
