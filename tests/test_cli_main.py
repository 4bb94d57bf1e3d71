"""The entry point: it imports only the command being run, and leaves the
process's logging set-up as it found it."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import surefetch
from surefetch._cli.main import COMMANDS, _parser, main
from surefetch.testing import ChaosServer, Fault

SRC = str(Path(surefetch.__file__).resolve().parents[1])


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("SUREFETCH_HTTP_RETRIES", "SUREFETCH_OFFLINE", "SUREFETCH_LOCK_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ChaosServer]:
    with ChaosServer(files={"/f.bin": b"x" * 4096}) as chaos:
        yield chaos


def _state(logger: logging.Logger) -> tuple[object, ...]:
    return (list(logger.handlers), list(logger.filters), logger.level, logger.propagate)


def _loaded_commands(*argv: str) -> list[str]:
    """The command modules that ``surefetch *argv`` imported, in a fresh process."""
    probe = "\n".join(
        [
            "import sys",
            "from surefetch._cli.main import COMMANDS, main",
            "try:",
            "    main(sys.argv[1:])",
            "except SystemExit:",
            "    pass",
            "print(sorted(n for n, m in COMMANDS.items() if m in sys.modules), file=sys.stderr)",
        ]
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return [line for line in done.stderr.splitlines() if line.startswith("[")]


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch", "http://h.invalid/x", "--offline", "--json"],
        ["fetch", "http://h.invalid/x", "-v", "--retries", "0"],
        ["fetch", "http://h.invalid/x", "-q", "--sha256", "abc"],
        ["cache", "info", "-v"],
        ["cache", "clean"],
        ["config"],
        ["fetch"],
        ["nonsense"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_main_leaves_the_surefetch_logger_as_it_found_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("surefetch")
    mine = logging.NullHandler()
    logger.addHandler(mine)
    logger.setLevel(logging.DEBUG)
    before = _state(logger)
    try:
        with contextlib.suppress(SystemExit):  # argparse's usage errors
            main(argv)
        assert _state(logger) == before
    finally:
        logger.removeHandler(mine)


def test_log_records_reach_the_root_logger_after_main(
    server: ChaosServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # What pytest's caplog showed: once main() had run in the process, the
    # library's records stopped reaching the root logger, and so caplog.
    assert main(["fetch", server.url("/f.bin"), "-v"]) == 0
    server.script("/f.bin", [Fault.status(503)])
    caplog.set_level(logging.INFO, logger="surefetch")
    surefetch.fetch(server.url("/f.bin"), refresh=True)
    assert any(record.getMessage().startswith("Retrying GET") for record in caplog.records)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_imports_its_own_module_only(command: str) -> None:
    assert _loaded_commands(command, "--help") == [f"['{command}']"]


@pytest.mark.parametrize("argv", [[], ["--help"], ["nonsense"]])
def test_help_and_unknown_commands_list_every_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _loaded_commands(*argv) == [str(sorted(COMMANDS))]
    help_text = _parser().format_help()
    assert all(name in help_text for name in COMMANDS)
