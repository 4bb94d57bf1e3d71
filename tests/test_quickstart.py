"""The README's Quickstart, run as a new user would: fresh clone, fresh virtual environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INNER = "SUREFETCH_QUICKSTART_INNER"


def quickstart_commands() -> list[str]:
    """The command lines of the first code block under '## Quickstart'."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S)
    assert block is not None, "the Quickstart has no code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quickstart_has_two_self_contained_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "surefetch demo" in commands[0]
    assert "pytest" in commands[1]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get(INNER) == "1",
    reason="already inside the Quickstart's own test run (it would start itself again)",
)
@pytest.mark.skipif(
    not (ROOT / ".git").exists() or shutil.which("git") is None,
    reason="needs a git checkout to clone",
)
def test_the_quickstart_works_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    bin_dir = environment / ("Scripts" if sys.platform == "win32" else "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUREFETCH_", "PYTHON"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(environment)
    env[INNER] = "1"
    # The second command runs the whole suite; here a few of its modules are
    # enough to show that the test dependencies install and pytest runs from
    # the clone. CI runs that command in full.
    env["PYTEST_ADDOPTS"] = "-k 'retry_policy or classify' -p no:cacheprovider"
    demo, tests = quickstart_commands()

    first = subprocess.run(
        demo, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Retrying GET" in first.stdout
    assert "Resuming" in first.stdout
    assert "Retry-After 1s" in first.stdout
    assert "cache hit" in first.stdout

    second = subprocess.run(
        tests, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert re.search(r"\d+ passed", second.stdout)
