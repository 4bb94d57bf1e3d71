"""The ``surefetch`` logger loads `logging` only for a record someone can see (`surefetch._log`)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from surefetch._log import DEBUG, INFO, NAME, defer_setup, logger
from surefetch.testing import ChaosServer


def _python(code: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **environment},
    )


def test_records_below_warning_are_dropped_without_importing_logging() -> None:
    done = _python(
        "import sys\n"
        "from surefetch._log import DEBUG, INFO, logger\n"
        "logger.debug('a %s', 'debug record'); logger.info('an info record')\n"
        "assert not logger.isEnabledFor(INFO) and not logger.isEnabledFor(DEBUG)\n"
        "assert 'logging' not in sys.modules\n"
        "logger.warning('a %s', 'warning')\n"
        "assert 'logging' in sys.modules\n"
    )
    # What logging's defaults do with them: the warning alone, by the last-resort handler.
    assert done.stderr == "a warning\n"


def test_once_logging_is_set_up_every_record_goes_to_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="surefetch"):
        assert logger.isEnabledFor(DEBUG)
        logger.debug("fetched %d bytes", 5)
        logger.info("stored", extra={"surefetch_retry": 2})
    debug, info = caplog.records
    assert (debug.levelno, debug.getMessage(), debug.name) == (DEBUG, "fetched 5 bytes", NAME)
    assert (info.levelno, getattr(info, "surefetch_retry", None)) == (INFO, 2)
    # The record names the line that logged it, not the logger's own module.
    assert debug.funcName == info.funcName == "test_once_logging_is_set_up_every_record_goes_to_it"
    assert debug.pathname == __file__


def test_exception_logs_the_error_being_handled(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="surefetch"):
        try:
            raise OSError("disk gone")
        except OSError:
            logger.exception("hook failed")
    (record,) = caplog.records
    assert record.exc_info is not None and str(record.exc_info[1]) == "disk gone"


def test_a_deferred_setup_runs_once_before_the_first_record_and_can_be_put_back() -> None:
    seen: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    real = logging.getLogger("surefetch")
    handler, level = Seen(), real.level
    real.addHandler(handler)
    real.setLevel(logging.INFO)
    previous = defer_setup(lambda: seen.append("set up"))
    try:
        logger.info("one")
        logger.info("two")
    finally:
        assert defer_setup(previous) is None  # it ran: nothing is left to put back
        real.removeHandler(handler)
        real.setLevel(level)
    assert seen == ["set up", "one", "two"]


def test_put_back_restores_the_setup_that_was_waiting() -> None:
    def first() -> None:
        pass

    def second() -> None:
        pass

    assert defer_setup(first) is None
    assert defer_setup(second) is first
    assert defer_setup(first) is second
    assert defer_setup(None) is first


def test_the_command_line_shows_a_warning_through_its_own_handler_when_it_comes(
    tmp_path: Path,
) -> None:
    """A default-verbosity download loads `logging` only for its first warning, and
    that warning is printed as the command line prints: control characters escaped."""
    unreadable = tmp_path / "netrc \x1b[31m"
    unreadable.mkdir()  # a directory: reading it as a netrc file fails
    code = (
        "import sys\n"
        "from surefetch._cli.main import main\n"
        "assert 'logging' not in sys.modules\n"
        "status = main(['fetch', sys.argv[1], '--cache-dir', sys.argv[2]])\n"
        "assert 'logging' in sys.modules\n"
        "sys.exit(status)\n"
    )
    with ChaosServer(files={"/a.txt": b"a" * 100}) as server:
        done = subprocess.run(
            [sys.executable, "-c", code, server.url("/a.txt"), str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            env={**os.environ, "NETRC": str(unreadable)},
        )
        quiet = subprocess.run(
            [sys.executable, "-m", "surefetch", "fetch", "-q", server.url("/a.txt")],
            capture_output=True,
            text=True,
            env={**os.environ, "NETRC": str(unreadable), "SUREFETCH_CACHE_DIR": str(tmp_path)},
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("Ignoring the netrc file ")
    assert "\\x1b[31m" in done.stderr and "\x1b" not in done.stderr
    assert quiet.returncode == 0 and quiet.stderr == ""
