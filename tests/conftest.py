"""Shared test setup: keep the developer's own configuration out of the suite, and
keep each test's changes to process-wide state out of the tests that follow."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from surefetch import _config

# Property tests must not depend on how busy the machine is: CI has two cores
# shared with servers and subprocesses, where a first example that imports a
# module can take a second. No per-example deadline, no "too slow" check; the
# number of examples stays hypothesis's default.
settings.register_profile("surefetch", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("surefetch")

# Module-level switches and registries that code under test changes for a
# while (and a failing test may leave changed): (module, attribute). Every
# one must exist, so that a rename shows here rather than as a guard that
# quietly guards nothing.
_GLOBALS = [
    ("surefetch._retry.budget", "_no_wait_depth"),  # testing.no_wait / enter_no_wait
    ("surefetch._retry.events", "_hooks"),  # add_retry_hook
    ("surefetch._fs.faults", "hooks"),  # testing.inject_fs_faults
]


def _guarded() -> list[tuple[ModuleType, str]]:
    found: list[tuple[ModuleType, str]] = []
    for name, attribute in _GLOBALS:
        module = importlib.import_module(name)
        assert hasattr(module, attribute), f"conftest: {name}.{attribute} is gone; update _GLOBALS"
        found.append((module, attribute))
    return found


@pytest.fixture(autouse=True)
def _no_leaked_global_state() -> Iterator[None]:
    """Restore what a test could leave changed for the rest of the run: the
    ``surefetch`` logger (handlers, filters, level, propagation), the no-wait
    switch, the retry hooks, the filesystem fault hooks and the config files
    read so far."""
    logger = logging.getLogger("surefetch")
    handlers, filters = list(logger.handlers), list(logger.filters)
    level, propagate, disabled = logger.level, logger.propagate, logger.disabled
    saved = [(module, attribute, getattr(module, attribute)) for module, attribute in _guarded()]
    _config.clear_cache()
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
        for module, attribute, value in saved:
            setattr(module, attribute, value)
        _config.clear_cache()


@pytest.fixture(autouse=True)
def _isolated_user_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the user config directory at an empty one, so that a surefetch.toml
    of whoever runs the tests cannot change what they see (also in the processes
    they start, which inherit XDG_CONFIG_HOME), and the user cache directory at
    a fresh one, so that nothing is written to theirs."""
    empty = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty))
    # The full path records what config files said in the user cache directory.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.setattr(_config, "_user_config_dir", lambda: str(Path(empty) / "surefetch"))
    _config.clear_cache()
    yield
    _config.clear_cache()


@pytest.fixture(params=["aiohttp", "stdlib"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once on each transport of the synchronous API (``SUREFETCH_TRANSPORT``).

    The protocol tests use it (``pytestmark``), so that the aiohttp and the
    standard-library transports pass the same matrix through the same
    servers. Processes the test starts inherit the choice.
    """
    name: str = request.param
    monkeypatch.setenv("SUREFETCH_TRANSPORT", name)
    return name
