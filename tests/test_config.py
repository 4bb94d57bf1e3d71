"""Settings: precedence, config files, one-line errors, `surefetch config`, and fuzzing."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st

import surefetch
from surefetch import ConfigError, _config
from surefetch._cli import main as _cli
from surefetch._cli.config import add_parser as add_config_parser
from surefetch._config import (
    CACHE_DIR,
    CONCURRENCY,
    CONNECT_TIMEOUT,
    DEADLINE,
    HTTP_RETRIES,
    HTTP_TIMEOUT,
    LOCK_TIMEOUT,
    OFFLINE,
    SETTINGS,
    ConfigFiles,
    Setting,
    effective,
    effective_in,
    load_config_file,
    parse_config,
    resolve,
    resolve_in,
)

SRC = str(Path(surefetch.__file__).resolve().parents[1])
NO_FILES = ConfigFiles()
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A fresh working directory and user config directory, and no SUREFETCH_ variables."""
    for name in list(os.environ):
        if name.startswith("SUREFETCH_"):
            monkeypatch.delenv(name)
    (tmp_path / "work").mkdir()
    (tmp_path / "user").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setattr(_config, "_user_config_dir", lambda: str(tmp_path / "user"))
    _config.clear_cache()
    yield
    _config.clear_cache()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def user(tmp_path: Path) -> Path:
    return tmp_path / "user"


def _wired() -> bool:
    parser = _cli._parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "config" in action.choices
    return False


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sequence[str]], int]:
    """The CLI's `main`, with `surefetch config` added if the parser does not register it yet."""
    if not _wired():
        original = _cli._parser

        def parser() -> argparse.ArgumentParser:
            built = original()
            for action in built._actions:
                if isinstance(action, argparse._SubParsersAction):
                    add_config_parser(action)
            return built

        monkeypatch.setattr(_cli, "_parser", parser)
    return _cli.main


def _attempt(call: Callable[[], T]) -> T | ConfigError:
    """What ``call`` returns, or the `ConfigError` it raises (any other error fails the test)."""
    try:
        return call()
    except ConfigError as error:
        return error


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and len(text.splitlines()) == 1, text
    return text


# --- precedence --------------------------------------------------------------------------

# (setting, flag value, environment value, file value, and what each layer gives)
LAYERS: list[tuple[Setting[Any], object, str, object, tuple[object, object, object, object]]] = [
    (HTTP_RETRIES, "1", "2", 4, (1, 2, 4, 3)),
    (OFFLINE, True, "yes", False, (True, True, False, False)),
    (LOCK_TIMEOUT, "1.5", "2.5", 7, (1.5, 2.5, 7.0, 600.0)),
    (CONNECT_TIMEOUT, "1", "2", 3.5, (1.0, 2.0, 3.5, 10.0)),
    (HTTP_TIMEOUT, "1", "2", 3, (1.0, 2.0, 3.0, 30.0)),
    (DEADLINE, "none", "60", 90, (None, 60.0, 90.0, None)),
    (CONCURRENCY, "1", "2", 3, (1, 2, 3, 16)),
]


@pytest.mark.parametrize(("setting", "flag", "env", "file", "expected"), LAYERS)
def test_flag_beats_environment_beats_file_beats_default(
    setting: Setting[Any],
    flag: object,
    env: str,
    file: object,
    expected: tuple[object, object, object, object],
) -> None:
    environ = {setting.env: env}
    files = ConfigFiles(values={setting.name: (file, "/p/surefetch.toml")})
    assert resolve_in(setting, flag_value=flag, environ=environ, files=files, cwd="/") == (
        expected[0],
        "flag",
    )
    assert resolve_in(setting, environ=environ, files=files, cwd="/") == (
        expected[1],
        f"environment ({setting.env})",
    )
    assert resolve_in(setting, environ={}, files=files, cwd="/") == (
        expected[2],
        "config file (/p/surefetch.toml)",
    )
    assert resolve_in(setting, environ={}, files=NO_FILES, cwd="/") == (expected[3], "default")


def test_precedence_through_the_real_environment_and_files(
    monkeypatch: pytest.MonkeyPatch, work: Path, user: Path
) -> None:
    (work / "surefetch.toml").write_text("http_retries = 5\nconcurrency = 8\n")
    (user / "surefetch.toml").write_text("http_retries = 9\nlock_timeout = 12\n")
    monkeypatch.setenv("SUREFETCH_CONCURRENCY", "2")
    assert resolve(HTTP_RETRIES) == 5  # the project file beats the user file
    assert resolve(LOCK_TIMEOUT) == 12.0  # the user file fills what the project file lacks
    assert resolve(CONCURRENCY) == 2  # the environment beats both
    assert resolve("concurrency", flag_value="1") == 1  # and a flag beats the environment
    assert resolve(CONNECT_TIMEOUT) == 10.0
    sources = {setting.name: source for setting, _, source in effective()}
    assert sources["http_retries"] == f"config file ({work / 'surefetch.toml'})"
    assert sources["lock_timeout"] == f"config file ({user / 'surefetch.toml'})"
    assert sources["concurrency"] == "environment (SUREFETCH_CONCURRENCY)"
    assert sources["connect_timeout"] == "default"


def test_the_library_uses_the_resolved_settings(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surefetch._retry.budget import default_policy
    from surefetch.cache import Cache

    (work / "surefetch.toml").write_text(
        'http_retries = 6\ndeadline = 45\nlock_timeout = 3\ncache_dir = "here"\n'
    )
    assert default_policy().retries == 6
    assert default_policy().deadline == 45.0
    cache = Cache()
    assert cache.lock_timeout == 3.0
    assert cache.root == work / "here"
    monkeypatch.setenv("SUREFETCH_HTTP_RETRIES", "1")
    assert default_policy().retries == 1


def test_fetch_follows_a_config_file(work: Path) -> None:
    (work / "surefetch.toml").write_text('offline = true\ncache_dir = "c"\nconcurrency = 2\n')
    with pytest.raises(surefetch.OfflineError, match=str(work / "c")):
        surefetch.fetch("https://example.invalid/a.whl")
    with pytest.raises(surefetch.FetchManyError):
        surefetch.fetch_many(["https://example.invalid/a.whl"])


def test_an_empty_variable_is_unset_except_for_retries() -> None:
    files = ConfigFiles(values={"cache_dir": ("/from/file", "/p/surefetch.toml")})
    value, source = resolve_in(CACHE_DIR, environ={CACHE_DIR.env: "  "}, files=files, cwd="/")
    assert (value, source) == ("/from/file", "config file (/p/surefetch.toml)")
    assert resolve_in(OFFLINE, environ={OFFLINE.env: ""}, files=NO_FILES, cwd="/")[0] is False
    with pytest.raises(ConfigError, match=r"^SUREFETCH_HTTP_RETRIES='' is not valid"):
        resolve_in(HTTP_RETRIES, environ={HTTP_RETRIES.env: ""}, files=NO_FILES, cwd="/")


def test_a_relative_cache_dir_is_relative_to_its_source(work: Path, user: Path) -> None:
    assert resolve_in(CACHE_DIR, flag_value="c", environ={}, files=NO_FILES, cwd="/w")[0] == "/w/c"
    environ = {CACHE_DIR.env: "e/../f"}
    assert resolve_in(CACHE_DIR, environ=environ, files=NO_FILES, cwd="/w")[0] == "/w/f"
    (user / "surefetch.toml").write_text('cache_dir = "cache"\n')
    assert resolve(CACHE_DIR) == str(user / "cache")
    assert resolve(CACHE_DIR, flag_value="~/x") == os.path.expanduser("~/x")


def test_deadline_accepts_none_to_override_a_file() -> None:
    files = ConfigFiles(values={"deadline": (60.0, "/p/surefetch.toml")})
    environ = {DEADLINE.env: " None "}
    assert resolve_in(DEADLINE, environ=environ, files=files, cwd="/") == (
        None,
        "environment (SUREFETCH_DEADLINE)",
    )


# --- config files ------------------------------------------------------------------------


def test_no_file_anywhere_gives_nothing(work: Path, user: Path) -> None:
    files = load_config_file(cwd=str(work), config_dir=str(user))
    assert (dict(files.values), files.paths) == ({}, ())


def test_surefetch_toml_in_the_working_directory(work: Path) -> None:
    path = work / "surefetch.toml"
    path.write_text("# comment\noffline = true\nhttp_timeout = 2.5\n")
    files = load_config_file()
    assert files.values == {"offline": (True, str(path)), "http_timeout": (2.5, str(path))}
    assert files.paths == (str(path),)


def test_surefetch_toml_in_the_user_config_directory(user: Path) -> None:
    path = user / "surefetch.toml"
    path.write_text("concurrency = 4\n")
    assert load_config_file().values == {"concurrency": (4, str(path))}


def test_tool_surefetch_in_pyproject(work: Path) -> None:
    path = work / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.surefetch]\nhttp_retries = 0\n')
    assert load_config_file().values == {"http_retries": (0, str(path))}
    assert resolve(HTTP_RETRIES) == 0


def test_a_pyproject_without_the_table_is_no_config(work: Path) -> None:
    (work / "pyproject.toml").write_text('[project]\nname = "surefetch-user"\n[tool.ruff]\n')
    assert load_config_file().paths == ()


def test_a_pyproject_not_about_surefetch_is_not_even_parsed(work: Path) -> None:
    (work / "pyproject.toml").write_text("this is [not toml\n")
    assert load_config_file().paths == ()


def test_surefetch_toml_wins_over_pyproject_which_is_then_not_read(work: Path) -> None:
    (work / "surefetch.toml").write_text("http_retries = 1\n")
    (work / "pyproject.toml").write_text("[tool.surefetch]\nhttp_retries = [broken\n")
    assert load_config_file().values == {"http_retries": (1, str(work / "surefetch.toml"))}


def test_the_project_file_wins_key_by_key_over_the_user_file(work: Path, user: Path) -> None:
    (work / "pyproject.toml").write_text("[tool.surefetch]\nhttp_retries = 1\n")
    (user / "surefetch.toml").write_text("http_retries = 2\noffline = true\n")
    files = load_config_file()
    assert files.values == {
        "http_retries": (1, str(work / "pyproject.toml")),
        "offline": (True, str(user / "surefetch.toml")),
    }
    assert files.paths == (str(work / "pyproject.toml"), str(user / "surefetch.toml"))


def test_the_same_file_as_project_and_user_file_is_read_once(work: Path) -> None:
    (work / "surefetch.toml").write_text("http_retries = 1\n")
    files = load_config_file(cwd=str(work), config_dir=str(work))
    assert files.paths == (str(work / "surefetch.toml"),)


def test_a_byte_order_mark_is_accepted(work: Path) -> None:
    (work / "surefetch.toml").write_bytes(b"\xef\xbb\xbfhttp_retries = 2\n")
    assert resolve(HTTP_RETRIES) == 2


def test_files_are_read_once_per_process_until_the_cache_is_cleared(work: Path) -> None:
    path = work / "surefetch.toml"
    path.write_text("http_retries = 1\n")
    assert resolve(HTTP_RETRIES) == 1
    path.write_text("http_retries = 2\n")
    assert resolve(HTTP_RETRIES) == 1
    _config.clear_cache()
    assert resolve(HTTP_RETRIES) == 2


def test_changing_directory_reads_that_directory_s_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, work: Path
) -> None:
    (work / "surefetch.toml").write_text("http_retries = 1\n")
    other = tmp_path / "other"
    other.mkdir()
    assert resolve(HTTP_RETRIES) == 1
    monkeypatch.chdir(other)
    assert resolve(HTTP_RETRIES) == 3


# --- one-line errors -----------------------------------------------------------------------

# (setting, an invalid value as text, the same kind of mistake in TOML, what is allowed)
INVALID: list[tuple[Setting[Any], str, str, str]] = [
    (HTTP_RETRIES, "foo", "5.5", "a whole number from 0 to 100"),
    (HTTP_RETRIES, "101", "true", "a whole number from 0 to 100"),
    (CONCURRENCY, "0", "-3", "a whole number from 1 to 1024"),
    (LOCK_TIMEOUT, "soon", "'soon'", "seconds from 0 to 604800"),
    (CONNECT_TIMEOUT, "nan", "nan", "seconds from 0.001 to 86400"),
    (HTTP_TIMEOUT, "-1", "inf", "seconds from 0.001 to 86400"),
    (DEADLINE, "never", "0", "or 'none'"),
    (OFFLINE, "perhaps", "1", "expected 1 or 0"),
    (CACHE_DIR, "\0", "3", "a directory path"),
]


@pytest.mark.parametrize(("setting", "text", "toml", "allowed"), INVALID)
def test_an_invalid_variable_names_itself_the_value_and_what_is_allowed(
    setting: Setting[Any], text: str, toml: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_in(setting, environ={setting.env: text}, files=NO_FILES, cwd="/")
    line = _one_line(info.value)
    assert line.startswith(f"{setting.env}={text!r} is not valid: expected ")
    assert allowed in line


@pytest.mark.parametrize(("setting", "text", "toml", "allowed"), INVALID)
def test_an_invalid_flag_names_itself(
    setting: Setting[Any], text: str, toml: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_in(setting, flag_value=text, environ={}, files=NO_FILES, cwd="/")
    label = setting.flag or setting.name
    assert _one_line(info.value).startswith(f"{label}={text!r} is not valid: expected ")


@pytest.mark.parametrize(("setting", "text", "toml", "allowed"), INVALID)
@pytest.mark.parametrize("place", ["project", "pyproject", "user"])
def test_an_invalid_file_value_names_the_file_the_key_and_the_value(
    setting: Setting[Any], text: str, toml: str, allowed: str, place: str, work: Path, user: Path
) -> None:
    if place == "pyproject":
        path = work / "pyproject.toml"
        path.write_text(f"[tool.surefetch]\n{setting.name} = {toml}\n")
        key = f"tool.surefetch.{setting.name}"
    else:
        path = (work if place == "project" else user) / "surefetch.toml"
        path.write_text(f"{setting.name} = {toml}\n")
        key = setting.name
    with pytest.raises(ConfigError) as info:
        load_config_file()
    line = _one_line(info.value)
    assert line.startswith(f"{path}: {key}=")
    assert " is not valid: expected " in line
    assert allowed in line


def test_file_values_are_shown_the_toml_way() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("http_retries = true", path="/p/surefetch.toml")
    assert str(info.value) == (
        "/p/surefetch.toml: http_retries=true is not valid: expected a whole number from 0 to 100"
    )


def test_a_huge_value_is_shortened_in_the_message() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_in(HTTP_RETRIES, environ={HTTP_RETRIES.env: "x" * 10_000}, files=NO_FILES, cwd="/")
    assert len(_one_line(info.value)) < 250


def test_an_invalid_variable_is_an_error_even_under_a_flag() -> None:
    environ = {HTTP_RETRIES.env: "lots"}
    with pytest.raises(ConfigError, match="SUREFETCH_HTTP_RETRIES='lots'"):
        resolve_in(HTTP_RETRIES, flag_value="1", environ=environ, files=NO_FILES, cwd="/")


def test_an_invalid_file_value_is_an_error_even_under_a_variable(
    monkeypatch: pytest.MonkeyPatch, work: Path
) -> None:
    (work / "surefetch.toml").write_text("lock_timeout = -1\n")
    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", "5")
    with pytest.raises(ConfigError, match="lock_timeout=-1 is not valid"):
        resolve(LOCK_TIMEOUT)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("http_retry = 3", "'http_retry' is not a setting (did you mean 'http_retries'?)"),
        ("[cache]\ndir = 'x'", "'cache' is not a setting"),
        ("zzz = 1", "'zzz' is not a setting: expected one of cache_dir, http_retries,"),
    ],
)
def test_an_unknown_key_is_an_error_naming_it(document: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(document, path="/p/surefetch.toml")
    line = _one_line(info.value)
    assert line.startswith("/p/surefetch.toml: ")
    assert message in line


def test_an_unknown_key_in_pyproject_is_named_with_its_table(work: Path) -> None:
    (work / "pyproject.toml").write_text("[tool.surefetch]\nofline = true\n")
    with pytest.raises(ConfigError, match=r"'tool\.surefetch\.ofline' is not a setting"):
        load_config_file()


def test_tool_surefetch_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"tool\.surefetch=3 is not valid: expected a table"):
        parse_config("[tool]\nsurefetch = 3", path="/p/pyproject.toml", pyproject=True)


@pytest.mark.parametrize(
    ("document", "line"),
    [
        ("http_retries = 3\noffline = \n", "line 2"),
        ("offline = true\noffline = false\n", "line 2"),
        ("[tool\n", "line 1"),
    ],
)
def test_a_toml_syntax_error_names_the_file_and_the_line(
    document: str, line: str, work: Path
) -> None:
    path = work / "surefetch.toml"
    path.write_text(document)
    with pytest.raises(ConfigError) as info:
        load_config_file()
    text = _one_line(info.value)
    assert text.startswith(f"{path}: invalid TOML: ")
    assert line in text


@pytest.mark.parametrize(
    "document",
    [
        b"http_retries = 3\n\xff\n",  # not UTF-8
        b"http_retries = " + b"1" * 5000,  # tomllib's int() raises a plain ValueError
        b"http_retries = " + b"[" * 5000 + b"]" * 5000,  # tomllib recurses
    ],
)
def test_what_tomllib_lets_escape_is_a_config_error_too(document: bytes, work: Path) -> None:
    (work / "surefetch.toml").write_bytes(document)
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config_file()


def test_an_unreadable_config_file_is_a_config_error(work: Path) -> None:
    (work / "surefetch.toml").mkdir()
    with pytest.raises(ConfigError, match=r"surefetch\.toml: cannot be read: "):
        load_config_file()


def test_a_deleted_working_directory_means_no_project_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert load_config_file().paths == ()


def test_effective_rejects_a_name_that_is_no_setting() -> None:
    with pytest.raises(KeyError, match="retries"):
        effective_in(flags={"retries": "1"}, environ={}, files=NO_FILES, cwd="/")


def test_the_registry_is_consistent() -> None:
    names = [setting.name for setting in SETTINGS]
    assert len(set(names)) == len(names)
    for setting in SETTINGS:
        assert setting.env == "SUREFETCH_" + setting.name.upper()
        assert setting.help and setting.why and setting.allowed.startswith("expected ")
        # The default passes the setting's own check.
        default = setting.default_value()
        shown = "none" if default is None else default
        assert setting.parse(shown, label="default") == default


# --- surefetch config ------------------------------------------------------------------


def test_config_prints_a_table_of_values_and_sources(
    cli: Callable[[Sequence[str]], int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    work: Path,
) -> None:
    (work / "surefetch.toml").write_text("lock_timeout = 5\n")
    monkeypatch.setenv("SUREFETCH_OFFLINE", "1")
    assert cli(["config", "--retries", "7", "--cache-dir", "c"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in out.splitlines()[1:9]}
    assert out.splitlines()[0].split() == ["setting", "value", "source"]
    assert rows["http_retries"] == ["7", "flag"]
    assert rows["cache_dir"] == [str(work / "c"), "flag"]
    assert rows["offline"] == ["true", "environment (SUREFETCH_OFFLINE)"]
    assert rows["lock_timeout"] == ["5", f"config file ({work / 'surefetch.toml'})"]
    assert rows["deadline"] == ["none", "default"]
    assert rows["http_timeout"] == ["30", "default"]
    assert out.rstrip().endswith(f"Config files: {work / 'surefetch.toml'}")


def test_config_says_where_it_looked_when_there_is_no_file(
    cli: Callable[[Sequence[str]], int], capsys: pytest.CaptureFixture[str], work: Path
) -> None:
    assert cli(["config"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("No config file; looked for: ")
    assert str(work / "surefetch.toml") in last


def test_config_json(
    cli: Callable[[Sequence[str]], int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUREFETCH_DEADLINE", "90")
    assert cli(["config", "--json", "--offline"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [record["name"] for record in records] == [setting.name for setting in SETTINGS]
    by_name = {record["name"]: record for record in records}
    assert by_name["deadline"]["value"] == 90.0
    assert by_name["deadline"]["source"] == "environment (SUREFETCH_DEADLINE)"
    assert by_name["offline"]["value"] is True
    assert by_name["offline"]["source"] == "flag"
    assert by_name["http_retries"] == {
        "name": "http_retries",
        "value": 3,
        "source": "default",
        "env": "SUREFETCH_HTTP_RETRIES",
        "flag": "--retries",
        "default": 3,
        "allowed": "expected a whole number from 0 to 100",
        "help": HTTP_RETRIES.help,
    }


@pytest.mark.parametrize(
    ("argv", "env", "file", "needle"),
    [
        (["config"], {"SUREFETCH_HTTP_TIMEOUT": "soon"}, "", "SUREFETCH_HTTP_TIMEOUT='soon'"),
        (["config", "--retries", "x"], {}, "", "--retries='x' is not valid"),
        (["config", "--json"], {}, "concurrency = 0\n", "concurrency=0 is not valid"),
        (["config"], {}, "retries = 3\n", "'retries' is not a setting"),
    ],
)
def test_config_exits_2_with_one_line_for_an_invalid_setting(
    cli: Callable[[Sequence[str]], int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    work: Path,
    argv: list[str],
    env: dict[str, str],
    file: str,
    needle: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if file:
        (work / "surefetch.toml").write_text(file)
    assert cli(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1
    assert needle in err


def test_config_runs_as_a_program(tmp_path: Path, work: Path) -> None:
    if not _wired():
        pytest.skip("`surefetch config` is not registered in _cli.py yet")
    (work / "surefetch.toml").write_text("concurrency = 4\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUREFETCH_")}
    env.update(PYTHONPATH=SRC, XDG_CONFIG_HOME=str(tmp_path / "user"))

    def run(**changes: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "surefetch", "config"],
            cwd=work,
            env={**env, **changes},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = run(SUREFETCH_HTTP_RETRIES="7")
    assert (done.returncode, done.stderr) == (0, "")
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line}
    assert lines["http_retries"].split(None, 2)[1:] == ["7", "environment (SUREFETCH_HTTP_RETRIES)"]
    assert lines["concurrency"].split(None, 2)[1:] == [
        "4",
        f"config file ({work / 'surefetch.toml'})",
    ]
    done = run(SUREFETCH_HTTP_RETRIES="many")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "error: SUREFETCH_HTTP_RETRIES='many' is not valid: expected a whole number from 0 to 100\n"
    )


# --- fuzzing ---------------------------------------------------------------------------


def _toml(value: object) -> str:
    """A TOML rendering of a value drawn below (enough of TOML for the fuzzing)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON's escapes are TOML's, except that TOML also wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-5, max_value=2000),
    st.floats(),
    st.floats(min_value=-1, max_value=1e6),
    st.text(max_size=20),
    st.sampled_from(["none", " 3 ", "1e3", "yes", "off", "~/c", "", "+5", "-0", "٣", "1_0"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
# Plausible values, drawn twice as often as anything else, so that a fair share
# of documents load and the checks of loaded values run too.
plausible = st.one_of(
    st.booleans(),
    st.integers(min_value=-2, max_value=1100),
    st.floats(min_value=0.0, max_value=1e5),
    st.sampled_from(["none", "5", "cache", "~/cache", "/abs/cache", "yes", "0.5"]),
)
values = st.one_of(plausible, plausible, plausible, values)
names = st.sampled_from([setting.name for setting in SETTINGS])
keys = st.one_of(names, names, names, names, st.text(max_size=12))
# (what comes before the keys, whether the file is a pyproject.toml)
LAYOUTS = [
    ("", False),
    ("", False),
    ("[tool.surefetch]\n", True),
    ("[tool.surefetch]\n", True),
    ("[tool.surefetch]\n", False),
    ("[tool]\nsurefetch = 1\n", True),
    ("[tool.other]\n", True),
]


@settings(max_examples=150, deadline=None)
@given(
    document=st.dictionaries(keys, values, max_size=4),
    layout=st.sampled_from(LAYOUTS),
)
def test_fuzz_loader_structured_documents(
    document: dict[str, object], layout: tuple[str, bool]
) -> None:
    prefix, pyproject = layout
    text = prefix + "".join(f"{json.dumps(k)} = {_toml(v)}\n" for k, v in document.items())
    loaded = _attempt(lambda: parse_config(text, path="/p/surefetch.toml", pyproject=pyproject))
    event("rejected" if isinstance(loaded, ConfigError) else "loaded")
    if isinstance(loaded, ConfigError):
        assert _one_line(loaded).startswith("/p/surefetch.toml: ")
        return
    for name, value in (loaded or {}).items():
        setting = _config.BY_NAME[name]
        # Whatever loaded passes its setting's check again (a fixed point).
        again = setting.parse("none" if value is None else value, label="x")
        assert again == value or (setting.is_path and isinstance(value, str))


def _numbers(low: float, high: float) -> st.SearchStrategy[object]:
    return st.one_of(
        st.floats(min_value=low, max_value=high),
        st.integers(min_value=math.ceil(low), max_value=math.floor(high)),
        st.floats(min_value=low, max_value=high).map(lambda number: f" {number!r} "),
    )


VALID: dict[str, st.SearchStrategy[object]] = {
    "cache_dir": st.text(min_size=1).filter(lambda text: bool(text.strip()) and "\0" not in text),
    "http_retries": st.integers(min_value=0, max_value=100) | st.sampled_from(["0", " 7 ", "+3"]),
    "deadline": _numbers(0.001, 604800) | st.sampled_from(["none", "None", " NONE "]),
    "connect_timeout": _numbers(0.001, 86400),
    "http_timeout": _numbers(0.001, 86400),
    "lock_timeout": _numbers(0, 604800),
    "offline": st.booleans() | st.sampled_from(["yes", "off", "1", "0", "TRUE", " no "]),
    "concurrency": st.integers(min_value=1, max_value=1024) | st.sampled_from(["16", "1024"]),
}
valid_items = st.sampled_from(sorted(VALID)).flatmap(
    lambda name: st.tuples(st.just(name), VALID[name])
)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(valid_items, max_size=8, unique_by=lambda item: item[0]))
def test_fuzz_valid_documents_always_load(items: list[tuple[str, object]]) -> None:
    text = "[tool.surefetch]\n" + "".join(f"{name} = {_toml(value)}\n" for name, value in items)
    loaded = parse_config(text, path="/p/pyproject.toml", pyproject=True)
    assert loaded is not None
    assert sorted(loaded) == sorted(name for name, _ in items)
    for name, value in loaded.items():
        setting = _config.BY_NAME[name]
        if setting.is_path:
            assert os.path.isabs(value)


FRAGMENTS = [
    "http_retries",
    "cache_dir",
    "deadline",
    "offline",
    "[tool.surefetch]",
    "[tool]",
    "[[x]]",
    "=",
    " = ",
    "\n",
    '"',
    "'",
    "'''",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "true",
    "3",
    "-1",
    "1e999",
    "nan",
    "0x1f",
    "1979-05-27",
    "\\u00e9",
    "\\",
    "\ufeff",
    "\x00",
    "\r\n",
]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=20),
    pyproject=st.booleans(),
)
def test_fuzz_loader_text(parts: list[str], pyproject: bool) -> None:
    loaded = _attempt(lambda: parse_config("".join(parts), path="/p/f.toml", pyproject=pyproject))
    event("rejected" if isinstance(loaded, ConfigError) else "loaded")
    if isinstance(loaded, ConfigError):
        assert _one_line(loaded).startswith("/p/f.toml: ")


@settings(max_examples=200, deadline=None)
@given(
    setting=st.sampled_from(SETTINGS),
    raw=st.one_of(st.text(max_size=12), st.sampled_from(["none", " 1 ", "1e3", "on", "٣"])),
    as_flag=st.booleans(),
)
def test_fuzz_environment_and_flag_values(setting: Setting[Any], raw: str, as_flag: bool) -> None:
    assume("\0" not in raw or setting is CACHE_DIR)  # os.environ cannot hold NUL anyway
    environ = {} if as_flag else {setting.env: raw}
    flag = raw if as_flag else None
    outcome = _attempt(
        lambda: resolve_in(setting, flag_value=flag, environ=environ, files=NO_FILES, cwd="/w")
    )
    if isinstance(outcome, ConfigError):
        label = (setting.flag or setting.name) if as_flag else setting.env
        assert _one_line(outcome).startswith(f"{label}={raw!r}"[:60])
    else:
        assert outcome[1] in ("flag", f"environment ({setting.env})", "default")


CLI_TOKENS = [
    "fetch",
    "cache",
    "config",
    "dir",
    "info",
    "verify",
    "prune",
    "clean",
    "--cache-dir",
    "--cache-dir=",
    "--retries",
    "--retries=5",
    "--offline",
    "--json",
    "-v",
    "-vv",
    "-q",
    "--sha256",
    "-o",
    "--output",
    "--mirror",
    "--no-cache",
    "--fix",
    "--older-than",
    "--help",
    "-h",
    "--version",
    "--",
    "-",
    "https://example.invalid/a.whl",
    "http://127.0.0.1:9/x.tar.gz",
    "https://user:secret@example.invalid/f",
    "ftp://example.invalid/f",
    "0",
    "3",
    "-1",
    "nan",
    "1e999",
    "ab" * 32,
    "",
    " ",
    "cachedir",
    "--unknown",
]
# A real command line to start from half of the time, so that most examples get
# past argparse and into the handlers.
COMMANDS: list[list[str]] = [
    [],
    [],
    [],
    ["fetch", "https://example.invalid/a.whl"],
    ["fetch", "http://127.0.0.1:9/x.tar.gz", "--sha256", "ab" * 32],
    ["cache", "dir"],
    ["cache", "info"],
    ["cache", "verify"],
    ["cache", "prune"],
    ["cache", "clean"],
    ["config"],
]
# Junk never holds a path separator, '.', '~' or NUL: a junk --cache-dir is then
# only ever a new name inside the test's working directory.
junk = st.text(
    alphabet=st.characters(exclude_characters="/\\.~\0", exclude_categories=["Cs"]),
    max_size=8,
)


SWITCHES = ["--offline", "--json", "-v", "-q", "--no-cache", "--fix", "--help", "--version"]
SWITCHES.append("--create-dirs")
OPTIONS = ["--cache-dir", "--retries", "--sha256", "-o", "--mirror", "--older-than"]
OPTION_VALUES = ["", " ", "0", "3", "-1", "101", "nan", "1e999", "x", "ab" * 32, "cachedir"]
# A unit of a command line: a switch, an option with a value, or any one token.
units = st.one_of(
    st.sampled_from(SWITCHES).map(lambda switch: [switch]),
    st.tuples(st.sampled_from(OPTIONS), st.one_of(st.sampled_from(OPTION_VALUES), junk)).map(list),
    st.tuples(st.sampled_from(OPTIONS), st.one_of(st.sampled_from(OPTION_VALUES), junk)).map(list),
    st.one_of(st.sampled_from(CLI_TOKENS), junk).map(lambda token: [token]),
)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("surefetch")
    state = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = state[0], state[1], state[2]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.sampled_from(COMMANDS),
    rest=st.lists(units, max_size=4).map(lambda groups: [arg for group in groups for arg in group]),
)
def test_fuzz_the_command_line(
    start: list[str],
    rest: list[str],
    cli: Callable[[Sequence[str]], int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    restore_logging: None,
) -> None:
    argv = start + rest
    # `demo` runs a local server on purpose; it has its own tests.
    assume(not any(arg.startswith("dem") for arg in argv))
    monkeypatch.setenv("SUREFETCH_OFFLINE", "1")
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    code: object
    try:
        code = cli(argv)
    except SystemExit as exit:  # argparse: --help, --version, or a usage error
        code = ("exit", exit.code)
    event(f"exit code {code}")
    if isinstance(code, tuple):
        assert code[1] in (0, 2), argv
    else:
        assert isinstance(code, int), argv
        assert code in (0, 1, 2), argv
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, argv
