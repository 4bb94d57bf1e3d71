"""The command line's cache-hit fast path agrees with the full path, and stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from surefetch._cli import main
from surefetch._cli_hit import answer_from_cache, user_dir
from surefetch.testing import ChaosServer


@pytest.fixture
def cached_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("SUREFETCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with ChaosServer(files={"/tool.tar.gz": b"payload" * 100}) as server:
        url = server.url("/tool.tar.gz")
        assert main(["fetch", url, "-q"]) == 0
    return url  # the server is gone: only the cache can answer now


@pytest.mark.parametrize(
    ("variable", "value"),
    [(None, None), ("XDG_CACHE_HOME", "/somewhere/cache"), ("XDG_CACHE_HOME", "  ")],
)
def test_user_dirs_agree_with_platformdirs(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, value: str | None
) -> None:
    if variable is not None and value is not None:
        monkeypatch.setenv(variable, value)
        monkeypatch.setenv(variable.replace("CACHE", "CONFIG"), value.replace("cache", "config"))
    assert user_dir("cache") == platformdirs.user_cache_dir("surefetch", appauthor=False)
    assert user_dir("config") == platformdirs.user_config_dir("surefetch", appauthor=False)


def test_a_hit_is_answered_without_the_full_command_line(
    cached_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", cached_url]) == 0
    full = capsys.readouterr().out
    assert answer_from_cache([cached_url, "-q", "--retries", "2"]) == 0
    assert capsys.readouterr().out == full


@pytest.mark.parametrize(
    "extra",
    [
        ["--json"],
        ["-o", "out.bin"],
        ["--extract", "out"],
        ["--no-cache"],
        ["--retries", "lots"],
        ["--sha256", "xyz"],
        ["--unknown"],
        ["--mirror"],
    ],
)
def test_anything_unusual_goes_the_full_way(cached_url: str, extra: list[str]) -> None:
    assert answer_from_cache([cached_url, *extra]) is None


def test_a_miss_goes_the_full_way(cached_url: str) -> None:
    assert answer_from_cache([cached_url + "?other"]) is None


def test_an_invalid_setting_is_still_reported(
    cached_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUREFETCH_HTTP_RETRIES", "many")
    assert answer_from_cache([cached_url]) is None
    assert main(["fetch", cached_url]) == 2
    assert "SUREFETCH_HTTP_RETRIES" in capsys.readouterr().err


def test_a_config_file_cache_dir_is_honoured(
    cached_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUREFETCH_CACHE_DIR")
    (tmp_path / "surefetch.toml").write_text('cache_dir = "cache"\n')
    from surefetch import _config

    _config.clear_cache()
    try:
        assert answer_from_cache([cached_url]) == 0
    finally:
        _config.clear_cache()


def test_a_hit_imports_neither_asyncio_nor_the_http_stack_nor_rich(
    cached_url: str, tmp_path: Path
) -> None:
    probe = (
        "import sys; sys.argv = ['surefetch', 'fetch', sys.argv[1]]; "
        "from surefetch._cli import main; code = main(); "
        "print(sorted(m for m in ('aiohttp', 'asyncio', 'rich', 'argparse', 'dataclasses')"
        " if m in sys.modules), file=sys.stderr); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, cached_url], capture_output=True, text=True, check=True
    )
    assert done.stderr.strip() == "[]"
    assert Path(done.stdout.strip()).read_bytes() == b"payload" * 100
