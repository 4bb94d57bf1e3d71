"""The download bar in a real terminal (a pty): on stderr, one line, whatever stdout is.

The command runs in a real subprocess with its stderr on a pseudo-terminal of
a set width and its stdout on a pipe, as in ``P=$(surefetch fetch URL)``. The
server stalls mid-body for 1.5 s (a scripted fault), so the download clearly
outlasts the bar's half-second delay and the bar is drawn without timing luck.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from pbs_fakes import FakeBuild, downloads_json, served, write
from surefetch._cli.progress import bar_layout
from surefetch._extract.archive import ArchiveFormat
from surefetch._python.platform import this_platform
from surefetch.testing import ChaosServer, Fault

# A 61-character wheel file name, as long as real ones get.
NAME = "surefetch_probe_package_with_long_name-1.2.3-py3-none-any.whl"
DATA = os.urandom(2 * 1024 * 1024)

# CSI sequences (colours, cursor moves, erase) and OSC ones: what a terminal does not print.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _screen_lines(raw: bytes) -> list[str]:
    """Every line the terminal showed, each carriage-return rewrite counted as its own."""
    text = _ESCAPES.sub("", raw.decode("utf-8", errors="replace"))
    frames: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        frames += [frame for frame in line.split("\r") if frame]
    return frames


def _in_terminal(
    words: list[str], tmp_path: Path, *, columns: int, **changes: str
) -> tuple[bytes, str, int]:
    """(what the terminal received on stderr, stdout, exit code) of ``surefetch *words``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env.update(
        SUREFETCH_CACHE_DIR=str(tmp_path / "cache"),
        SUREFETCH_NO_RETRY_DELAY="1",
        COLUMNS=str(columns),
        TERM="xterm-256color",
    )
    env.update(changes)
    env.pop("NO_COLOR", None)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "surefetch", *words],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            cwd=tmp_path,
        )
    finally:
        os.close(slave)
    received = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed its side
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=30)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    return received, stdout, code


@pytest.mark.parametrize("columns", [80, 200])
def test_bar_on_stderr_fits_one_line_with_stdout_captured(tmp_path: Path, columns: int) -> None:
    with ChaosServer(files={f"/{NAME}": DATA}) as server:
        server.script(f"/{NAME}", [Fault.stall(1.5, after=256 * 1024)])
        raw, stdout, code = _in_terminal(
            ["fetch", server.url(f"/{NAME}")], tmp_path, columns=columns
        )

    assert code == 0, raw
    lines = stdout.splitlines()
    assert len(lines) == 1 and stdout.endswith("\n")
    assert Path(lines[0]).name == NAME and Path(lines[0]).read_bytes() == DATA

    screen = _screen_lines(raw)
    bars = [line for line in screen if "MB/s" in line]
    assert bars, f"no bar was drawn: {screen!r}"
    # The retry's warning line (from the stall) is a log line, free to wrap; the bar's are not.
    for line in screen:
        assert line.startswith("warning: ") or len(line) < columns, line
    for bar in bars:
        # One line: the name, the bar, the size and the speed, all together.
        assert bar.startswith(NAME[:20]) and "/2.1 MB" in bar, bar
        if columns == 80:
            assert NAME not in bar and "\N{HORIZONTAL ELLIPSIS}" in bar, bar
        else:
            assert bar.startswith(NAME), bar


def test_layout_keeps_one_line_at_any_width_from_40() -> None:
    for width in range(40, 301):
        for name_length in (1, 10, 61, 200):
            name, bar, with_eta = bar_layout(width, name_length)
            # name, bar, size (14), speed (10), time left (8): one space between each.
            used = name + 1 + bar + 1 + 14 + 1 + 10 + (1 + 8 if with_eta else 0)
            assert used < width, (width, name_length)
            assert 1 <= name <= name_length and bar >= 5


@pytest.mark.skipif(sys.platform == "win32", reason="the fake python3 is a sh script")
def test_several_downloads_show_one_line_each_and_a_total(tmp_path: Path) -> None:
    platform = str(this_platform())
    builds = [
        FakeBuild("3.12.4", platform, size=5 << 20),
        FakeBuild("3.13.1", platform, fmt=ArchiveFormat.TAR_ZST, size=5 << 20),
    ]
    files = served(builds)
    with ChaosServer(files=files) as server:
        for build in builds:
            server.script(build.path, [Fault.stall(1.5, after=64 * 1024)])
        catalog = write(tmp_path / "downloads.json", downloads_json(builds, files, server.base_url))
        raw, _, code = _in_terminal(
            ["python", "install", "3.12", "3.13", "--downloads-json", catalog],
            tmp_path,
            columns=80,
            SUREFETCH_PYTHON_INSTALL_DIR=str(tmp_path / "py"),
        )

    assert code == 0, raw
    screen = _screen_lines(raw)
    for line in screen:
        assert line.startswith("warning: ") or len(line) < 80, line
    drawn = "\n".join(screen)
    # One line per version while both download, and the total of both under them.
    assert "Python 3.12" in drawn and "Python 3.13" in drawn, drawn
    # The total sums both files (rich's decimal megabytes), whole once both are done.
    megabytes = f"{sum(len(files[build.path]) for build in builds) / 1e6:.1f}"
    totals = [line for line in screen if line.startswith("Total")]
    assert totals and f"{megabytes}/{megabytes} MB" in totals[-1], drawn


@pytest.mark.parametrize("columns", [80, 200])
def test_retry_lines_print_whole_above_a_live_bar(tmp_path: Path, columns: int) -> None:
    with ChaosServer(files={f"/{NAME}": DATA}) as server:
        # The stall outlasts the bar's delay; both faults then strike while it is drawn.
        server.script(
            f"/{NAME}", [Fault.stall(1.5, after=256 * 1024), Fault.reset_after(1024 * 1024)]
        )
        raw, stdout, code = _in_terminal(
            ["fetch", server.url(f"/{NAME}")], tmp_path, columns=columns
        )

    assert code == 0, raw
    assert Path(stdout.strip()).read_bytes() == DATA
    screen = _screen_lines(raw)
    warnings = [line for line in screen if line.startswith("warning: ")]
    assert [w.split("(attempt ")[1][:6] for w in warnings] == ["1 of 4", "2 of 4"], screen
    assert all("resuming at byte " in w and "; retrying in " in w for w in warnings), warnings
    bars = [line for line in screen if "MB/s" in line]
    assert bars, f"no bar was drawn: {screen!r}"
    # A warning is never spliced into a bar's line, nor a bar into a warning's.
    assert not any("warning" in bar for bar in bars)
    assert not any("MB/s" in w for w in warnings)
    # The bar goes on after the warnings, from where the download resumed.
    assert screen.index(warnings[-1]) < max(i for i, line in enumerate(screen) if "MB/s" in line)
