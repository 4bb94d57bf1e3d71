"""The command line's cache-hit fast path agrees with the full path, and stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest
from hypothesis import given, strategies as st

from surefetch._cli.hit import answer_from_cache, cache_key, simple_cache_url
from surefetch._cli.main import main
from surefetch._dirs import user_dir
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
    assert user_dir("data") == platformdirs.user_data_dir("surefetch", appauthor=False)


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
        ["--json", "-o", "out.bin"],
        ["-o", "a.bin", "-o", "b.bin"],
        ["-o", "/dev/null"],
        ["-o", "no/such/dir/out.bin"],
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
        "from surefetch._cli.main import main; code = main(); "
        "print(sorted(m for m in ('aiohttp', 'asyncio', 'rich', 'argparse', 'dataclasses')"
        " if m in sys.modules), file=sys.stderr); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, cached_url], capture_output=True, text=True, check=True
    )
    assert done.stderr.strip() == "[]"
    assert Path(done.stdout.strip()).read_bytes() == b"payload" * 100


_url_parts = st.text(alphabet="abcXYZ019.-_~/?=&:;%@#+ !*'()[]", max_size=20)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https", "ftp", ""]),
    host=st.text(alphabet="abcXYZ019.-_[]:@", min_size=0, max_size=12),
    port=st.one_of(st.none(), st.text(alphabet="0123456789x", min_size=0, max_size=6)),
    path=_url_parts,
)
def test_the_light_url_parser_keys_urls_exactly_as_the_full_path(
    scheme: str, host: str, port: str | None, path: str
) -> None:
    url = f"{scheme}://{host}" + ("" if port is None else f":{port}") + path
    light = simple_cache_url(url)
    if light is None:
        return  # the full path takes over: nothing to agree on
    from surefetch._cache.layout import normalize_url, url_key
    from surefetch._url import parse_url

    full = normalize_url(parse_url(url).url)
    assert light == full
    assert cache_key(light) == url_key(parse_url(url).url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a/b.whl",
        "http://127.0.0.1:8080/x?y=1&z=2",
        "https://EXAMPLE.org:443/A",
        "http://h.example/",
        "http://h.example",
    ],
)
def test_the_light_parser_accepts_the_common_forms(url: str) -> None:
    from surefetch._cache.layout import normalize_url
    from surefetch._url import parse_url

    assert simple_cache_url(url) == normalize_url(parse_url(url).url)


def test_an_entry_whose_metadata_disagrees_goes_the_full_way(cached_url: str) -> None:
    metas = list(Path(os.environ["SUREFETCH_CACHE_DIR"]).glob("downloads-v1/*/*/entry.json"))
    assert len(metas) == 1
    assert answer_from_cache([cached_url]) == 0
    metas[0].write_text(metas[0].read_text().replace('"kind": "file"', '"kind": "tree"'))
    assert answer_from_cache([cached_url]) is None


def _full_path_answer(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What the full command line prints for ``fetch words``, the light path bypassed."""
    from surefetch._cli.main import _run

    assert _run(["fetch", *words]) == 0
    return capsys.readouterr().out


def test_a_hit_with_json_is_light_and_says_what_the_full_path_says(
    cached_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    full = json.loads(_full_path_answer([cached_url, "--json"], capsys))
    assert answer_from_cache([cached_url, "--json"]) == 0
    light = json.loads(capsys.readouterr().out)
    assert list(light) == list(full)
    assert {k: v for k, v in light.items() if k != "elapsed_s"} == {
        k: v for k, v in full.items() if k != "elapsed_s"
    }
    assert 0 <= light["elapsed_s"] < 5


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_a_hit_with_output_is_light_and_writes_as_the_full_path(
    cached_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    quiet: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    full_out = _full_path_answer([cached_url, "-o", "full.bin", *quiet], capsys)
    (tmp_path / "light.bin").write_bytes(b"old")
    os.chmod(tmp_path / "light.bin", 0o640)
    assert answer_from_cache([cached_url, "-o", "light.bin", *quiet]) == 0
    light_out = capsys.readouterr().out
    assert (tmp_path / "light.bin").read_bytes() == (tmp_path / "full.bin").read_bytes()
    assert (tmp_path / "light.bin").stat().st_mode & 0o777 == 0o640  # a replaced file keeps it
    assert light_out == full_out.replace("full.bin", "light.bin")
    assert not list(tmp_path.glob(".*.part"))
    (tmp_path / "into").mkdir()
    assert answer_from_cache([cached_url, "--output", "into", *quiet]) == 0
    assert len(list((tmp_path / "into").iterdir())) == 1


def test_a_hit_in_a_project_that_depends_on_surefetch_stays_light(
    cached_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    probe = (
        "import sys; from surefetch._cli.main import main; "
        f"code = main(['fetch', {cached_url!r}]); "
        "print(code, 'surefetch._config' in sys.modules, 'tomllib' in sys.modules)"
    )

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[-1]

    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\ndependencies = ["surefetch>=0.1", "surefetch[cli]"]\n'
    )
    assert run() == "0 False False"
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.surefetch]\nhttp_retries = 5\n'
    )
    assert run() == "0 True True"  # read and checked once ...
    assert run() == "0 False False"  # ... then answered from the record of what it said
