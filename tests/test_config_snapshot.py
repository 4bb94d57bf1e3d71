"""The record of what the config files said: used while they are unchanged, never after."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from surefetch._config_snapshot import _record_path, load, places, save, stamps
from surefetch.testing import ChaosServer


@pytest.fixture
def here(tmp_path: Path) -> tuple[str, str, str]:
    """A project directory, a user config directory and a cache home, all empty."""
    dirs = [tmp_path / name for name in ("project", "config", "home")]
    for directory in dirs:
        directory.mkdir()
    return str(dirs[0]), str(dirs[1]), str(dirs[2])


def _record(here: tuple[str, str, str], values: dict[str, object]) -> bool:
    cwd, config_dir, home = here
    return save(cwd, config_dir, stamps(places(cwd, config_dir)) or (), values, cache_home=home)


def test_values_of_every_kind_come_back_as_they_went(here: tuple[str, str, str]) -> None:
    cwd, config_dir, home = here
    Path(cwd, "surefetch.toml").write_text("whatever = 1\n")
    values = {
        "cache_dir": "/c\tab",
        "http_retries": 5,
        "timeout": 2.5,
        "offline": True,
        "x": False,
    }
    assert _record(here, values)
    assert load(cwd, config_dir, cache_home=home) == values


@pytest.mark.parametrize(
    "change",
    ["edit, same size", "touch only", "replace by rename", "user file appears", "file vanishes"],
)
def test_any_change_to_any_config_file_makes_the_record_unusable(
    here: tuple[str, str, str], change: str
) -> None:
    cwd, config_dir, home = here
    project = Path(cwd, "pyproject.toml")
    project.write_text("[tool.surefetch]\nhttp_retries = 5\n")
    assert _record(here, {"http_retries": 5})
    assert load(cwd, config_dir, cache_home=home) == {"http_retries": 5}
    before = project.stat()
    if change == "edit, same size":
        project.write_text("[tool.surefetch]\nhttp_retries = 6\n")
        # Even with the old modification time put back, the change time moves on.
        os.utime(project, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert project.stat().st_size == before.st_size
    elif change == "touch only":
        os.utime(project, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    elif change == "replace by rename":
        Path(cwd, "new.toml").write_text("[tool.surefetch]\nhttp_retries = 5\n")
        os.replace(Path(cwd, "new.toml"), project)
    elif change == "user file appears":
        Path(config_dir, "surefetch.toml").write_text("offline = true\n")
    else:
        project.unlink()
    assert load(cwd, config_dir, cache_home=home) is None


@pytest.mark.parametrize(
    "values", [{"cache_dir": "a\nb"}, {"mirrors": ["x"]}, {"": 1}, {"a\tb": 1}, {"n": None}]
)
def test_values_it_cannot_keep_faithfully_are_not_recorded(
    here: tuple[str, str, str], values: dict[str, object]
) -> None:
    cwd, config_dir, home = here
    assert not _record(here, values)
    assert load(cwd, config_dir, cache_home=home) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("snapshot 1", "snapshot 9"),
        lambda text: text[:-1],  # cut short
        lambda text: text.replace("\ti\t", "\tz\t"),
        lambda text: text.replace("\ti\t5", "\ti\tfive"),
        lambda text: "",
    ],
)
def test_a_damaged_record_is_not_used(here: tuple[str, str, str], damage: object) -> None:
    cwd, config_dir, home = here
    Path(cwd, "surefetch.toml").write_text("http_retries = 5\n")
    assert _record(here, {"http_retries": 5})
    (record,) = Path(home, "config-snapshots").iterdir()
    assert callable(damage)
    record.write_text(damage(record.read_text()))
    assert load(cwd, config_dir, cache_home=home) is None


def test_a_record_for_another_directory_is_not_used(here: tuple[str, str, str]) -> None:
    cwd, config_dir, home = here
    other = str(Path(cwd).parent / "other")
    os.mkdir(other)
    assert _record(here, {"http_retries": 5})
    # Records are named by a hash: even a collision must not answer for another place.
    shutil.copy(_record_path(cwd, config_dir, home), _record_path(other, config_dir, home))
    assert load(other, config_dir, cache_home=home) is None
    assert load(cwd, config_dir, cache_home=home) == {"http_retries": 5}


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    probe = (
        "import sys; from surefetch._cli.main import main; code = main(sys.argv[1:]); "
        "print('parsed' if 'tomllib' in sys.modules else 'recorded', file=sys.stderr); "
        "sys.exit(code)"
    )
    return subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cache_hit_in_a_configured_project_follows_every_edit(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    pyproject = project / "pyproject.toml"
    with ChaosServer(files={"/a.bin": b"A" * 1000}) as server:
        url = server.url("/a.bin")
        pyproject.write_text('[tool.surefetch]\ncache_dir = "first"\n')
        filled = _cli("fetch", url, "-q", cwd=project, env=env)
        assert filled.returncode == 0, filled.stderr
        pyproject.write_text('[tool.surefetch]\ncache_dir = "second"\n')
        filled = _cli("fetch", url, "-q", cwd=project, env=env)
        assert filled.returncode == 0, filled.stderr
    # The server is gone: only the caches can answer now.
    first, second = (project / "first").resolve(), (project / "second").resolve()
    hit = _cli("fetch", url, cwd=project, env=env)
    assert (hit.returncode, hit.stderr.split()[-1]) == (0, "recorded")
    assert Path(hit.stdout.strip()).is_relative_to(second)

    pyproject.write_text('[tool.surefetch]\ncache_dir = "first"\n')
    for expected in ("parsed", "recorded"):
        hit = _cli("fetch", url, cwd=project, env=env)
        assert (hit.returncode, hit.stderr.split()[-1]) == (0, expected)
        assert Path(hit.stdout.strip()).is_relative_to(first)

    pyproject.write_text('[tool.surefetch]\ncache_dir = "first"\nhttp_retries = "many"\n')
    for _ in range(2):  # an invalid file is never recorded: it is reported every time
        failed = _cli("fetch", url, cwd=project, env=env)
        assert failed.returncode == 2
        assert "http_retries" in failed.stderr and str(pyproject) in failed.stderr


def test_a_recorded_max_age_decides_freshness_on_the_fast_path(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env["SUREFETCH_CACHE_DIR"] = str(tmp_path / "cache")
    pyproject = project / "pyproject.toml"
    with ChaosServer(files={"/a.bin": b"A" * 1000}) as server:
        url = server.url("/a.bin")
        pyproject.write_text("[tool.surefetch]\nmax_age = 0\n")
        # Filled, then asked again: the fast path, reading max_age from the record,
        # does not answer with the file the server said was fresh for a while.
        for requests in (1, 2):
            done = _cli("fetch", url, "-q", cwd=project, env=env)
            assert done.returncode == 0, done.stderr
            assert server.request_count() == requests
        pyproject.write_text("[tool.surefetch]\nmax_age = 3600\n")
        for expected in ("parsed", "recorded"):
            done = _cli("fetch", url, "-q", cwd=project, env=env)
            assert (done.returncode, done.stderr.split()[-1]) == (0, expected), done.stderr
        assert server.request_count() == 2  # fresh for an hour: no request
