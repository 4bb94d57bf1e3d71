"""Shared test setup: keep the developer's own configuration out of the suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch import _config


@pytest.fixture(autouse=True)
def _isolated_user_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the user config directory at an empty one, so that a surefetch.toml
    of whoever runs the tests cannot change what they see (also in the processes
    they start, which inherit XDG_CONFIG_HOME)."""
    empty = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty))
    monkeypatch.setattr(_config, "_user_config_dir", lambda: str(Path(empty) / "surefetch"))
    _config.clear_cache()
    yield
    _config.clear_cache()
