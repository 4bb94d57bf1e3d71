"""`surefetch python`: managed installs of fake python-build-standalone builds from a
chaos server, through resets, mirrors, hash mismatches, processes and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import surefetch.python as sp
from pbs_fakes import FakeBuild, downloads_json, served, write
from surefetch._errors import ConfigError
from surefetch._extract.archive import ArchiveFormat
from surefetch._python.errors import PythonInstallError, PythonNotFoundError
from surefetch._python.platform import this_platform
from surefetch.testing import ChaosServer, Fault

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake python3 is a sh script")

PLATFORM = str(this_platform())
B3124 = FakeBuild("3.12.4", PLATFORM, size=3 << 20)
B3123 = FakeBuild("3.12.3", PLATFORM, size=64 << 10)
B3131 = FakeBuild("3.13.1", PLATFORM, fmt=ArchiveFormat.TAR_ZST, size=1 << 20)
B3131T = FakeBuild("3.13.1", PLATFORM, variant="freethreaded", size=64 << 10)
B3119 = FakeBuild("3.11.9", PLATFORM, full=True, size=64 << 10)
OTHER = FakeBuild(
    "3.10.14", "linux-aarch64-gnu" if "x86_64" in PLATFORM else "linux-x86_64-gnu", size=1 << 10
)
BUILDS = [B3124, B3123, B3131, B3131T, B3119, OTHER]
FILES = served(BUILDS)


@pytest.fixture
def server() -> ChaosServer:
    with ChaosServer(files=FILES) as running:
        yield running


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SUREFETCH_PYTHON_INSTALL_DIR", str(tmp_path / "py"))
    monkeypatch.delenv("SUREFETCH_PYTHON_INSTALL_MIRROR", raising=False)
    return dict(os.environ)


def catalog(tmp_path: Path, base_url: str, builds: list[FakeBuild] = BUILDS) -> str:
    return write(tmp_path / "downloads.json", downloads_json(builds, FILES, base_url))


def cli(*words: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surefetch", "python", *words],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def runs(installation: sp.Installation) -> str:
    return subprocess.run([installation.executable], capture_output=True, text=True).stdout


# --- requests, keys, platform, catalog -------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "key"),
    [
        ("3", B3131.key),
        ("3.12", B3124.key),
        ("3.12.3", B3123.key),
        (">=3.11,<3.13", B3124.key),
        ("cpython@3.12", B3124.key),
        ("cp312", B3124.key),
        ("cpython-3.12", B3124.key),
        ("3.13t", B3131T.key),
        ("cp313t", B3131T.key),
        (B3123.key, B3123.key),
        (OTHER.key, OTHER.key),
    ],
)
def test_every_request_form_picks_the_newest_stable_build_that_fits(
    tmp_path: Path, request_text: str, key: str
) -> None:
    builds = sp.available(request_text, downloads_json=catalog(tmp_path, "http://h/"))
    assert builds[0].key == key


def test_keys_are_written_as_uv_writes_them() -> None:
    from surefetch._python.platform import platform_from

    assert str(platform_from("linux", "x86_64", musl=False)) == "linux-x86_64-gnu"
    assert str(platform_from("linux", "aarch64", musl=True)) == "linux-aarch64-musl"
    assert str(platform_from("darwin", "arm64", musl=False)) == "macos-aarch64-none"
    assert str(platform_from("win32", "AMD64", musl=False)) == "windows-x86_64-none"
    assert B3131T.key == f"cpython-3.13.1+freethreaded-{PLATFORM}"
    here = this_platform()
    assert here.os == {"linux": "linux", "darwin": "macos"}.get(sys.platform, "windows")
    if sys.platform.startswith("linux"):
        import platform

        glibc = platform.libc_ver()[0] == "glibc"
        assert here.libc == ("gnu" if glibc else "musl")


@pytest.mark.parametrize("text", ["foo", "3.x", "", "python3", ">=x"])
def test_an_unparseable_request_is_a_usage_error_naming_what_is_accepted(
    text: str, env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="expected a version"):
        sp.find(text)
    done = cli("install", text, env=env)
    assert done.returncode == 2
    assert "cpython@3.12" in done.stderr and "cp312" in done.stderr


def test_no_match_names_the_request_the_platform_and_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(PythonNotFoundError) as caught:
        sp.install("3.9", downloads_json=catalog(tmp_path, "http://h/"), install_dir=tmp_path)
    message = str(caught.value)
    assert "'3.9'" in message and PLATFORM in message and "3.13.1" in message


def test_a_bad_downloads_json_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", b'{"k": {"name": "cpython"}}')
    with pytest.raises(ConfigError, match=r"bad\.json is not valid: missing field"):
        sp.available(downloads_json=bad)
    with pytest.raises(ConfigError, match=r"Cannot read Python downloads JSON"):
        sp.available(downloads_json=str(tmp_path / "missing.json"))


def test_the_pbs_installer_table_is_the_default_catalog() -> None:
    builds = sp.available("3.12")
    assert builds and all(b.version.startswith("3.12.") for b in builds)
    assert all(b.platform == PLATFORM and b.sha256 for b in builds)
    assert builds[0].key == f"cpython-{builds[0].version}-{PLATFORM}"


# --- the pipeline ----------------------------------------------------------------------


def test_install_extracts_a_tree_that_runs_with_metadata_and_a_minor_link(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    done = cli("install", "3.12", "--downloads-json", catalog(tmp_path, server.base_url), env=env)
    assert done.returncode == 0, done.stderr
    assert "Installed Python 3.12.4 in" in done.stderr and f" + {B3124.key}" in done.stderr
    root = tmp_path / "py"
    assert sorted(os.listdir(root)) == [".temp", f"cpython-3.12-{PLATFORM}", B3124.key]
    assert os.readlink(root / f"cpython-3.12-{PLATFORM}") == B3124.key
    installation = sp.find("3.12")
    assert installation is not None and runs(installation) == "Python 3.12.4\n"
    assert (installation.path / "bin" / "python").exists()
    assert (installation.path / "lib" / "python3.12" / "os.py").is_file()
    meta = json.loads((installation.path / "surefetch-python.json").read_text())
    assert meta["sha256"] == installation.sha256 and meta["build"] == "20240726"
    assert cli("find", "3.12", env=env).stdout.strip() == str(installation.executable)

    again = cli("install", "3.12", "--downloads-json", catalog(tmp_path, server.base_url), env=env)
    assert "already installed" in again.stderr
    assert server.request_count() == 1  # nothing downloaded the second time


def test_zst_and_full_archives_install(server: ChaosServer, tmp_path: Path) -> None:
    catalog_path = catalog(tmp_path, server.base_url)
    zst = sp.install("3.13", downloads_json=catalog_path, install_dir=tmp_path / "py")
    full = sp.install("3.11", downloads_json=catalog_path, install_dir=tmp_path / "py")
    assert runs(zst) == "Python 3.13.1\n" and runs(full) == "Python 3.11.9\n"
    assert not (full.path / "build").exists()  # a full archive's install/ is the installation


def test_three_resets_continue_the_same_extraction(server: ChaosServer, tmp_path: Path) -> None:
    size = len(FILES[B3124.path])
    server.script(B3124.path, [Fault.reset_after(size // 4)] * 3)
    installation = sp.install(
        "3.12.4", downloads_json=catalog(tmp_path, server.base_url), install_dir=tmp_path / "py"
    )
    assert runs(installation) == "Python 3.12.4\n"
    assert server.request_count(B3124.path) == 4
    assert installation.retries == 3 and installation.resumed_bytes > 0
    assert server.bytes_sent(B3124.path) <= 1.05 * size
    assert [r.range_start for r in server.requests][1:] == [
        size // 4,
        2 * (size // 4),
        3 * (size // 4),
    ]


def test_a_reset_on_every_request_fails_after_four_requests_with_the_lines_in_order(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    server.script(B3124.path, [Fault.reset_after(1000)] * 10)
    done = cli(
        "install",
        "3.12",
        "--retries",
        "3",
        "--downloads-json",
        catalog(tmp_path, server.base_url),
        env=env,
    )
    assert done.returncode == 1
    # At the default verbosity each retry prints one warning line first.
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3
    lines = done.stderr.strip().splitlines()[len(warnings) :]
    assert lines[0] == f"error: Failed to install {B3124.key}"
    assert lines[1].startswith("  Caused by: Request failed after 3 retries in ")
    assert lines[2] == f"  Caused by: Failed to extract archive: {B3124.filename}"
    assert "Connection reset by peer" in lines[3]
    assert server.request_count(B3124.path) == 4
    assert not (tmp_path / "py" / B3124.key).exists()


def test_a_hash_mismatch_is_fatal_and_a_failed_reinstall_keeps_the_old(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    good = catalog(tmp_path, server.base_url)
    document = json.loads(Path(good).read_text())
    document[B3124.key]["sha256"] = "0" * 64
    bad = write(tmp_path / "bad.json", json.dumps(document).encode())
    done = cli("install", "3.12.4", "--downloads-json", bad, env=env)
    assert done.returncode == 1
    assert "0" * 64 in done.stderr and "Hash mismatch" in done.stderr
    assert server.request_count(B3124.path) == 1
    assert not (tmp_path / "py" / B3124.key).exists()

    installed = sp.install("3.12.4", downloads_json=good)
    server.reset_log()
    with pytest.raises(PythonInstallError):
        sp.install("3.12.4", downloads_json=bad, reinstall=True, cache=tmp_path / "other")
    assert server.request_count(B3124.path) == 1
    assert runs(installed) == "Python 3.12.4\n"
    assert sp.find("3.12.4") is not None


def test_reinstall_replaces_and_offline_reinstall_uses_the_cache(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with ChaosServer(files=FILES) as server:
        catalog_path = catalog(tmp_path, server.base_url)
        first = sp.install("3.12", downloads_json=catalog_path)
    # The server is gone: only the cached archive can serve.
    again = sp.install("3.12", downloads_json=catalog_path, reinstall=True, offline=True)
    assert again.from_cache and again.installed_at > first.installed_at
    assert runs(again) == "Python 3.12.4\n"
    with pytest.raises(PythonInstallError) as caught:
        sp.install("3.13", downloads_json=catalog_path, offline=True)
    assert "offline" in str(caught.value.__cause__)


def test_mirrors_in_order_then_the_original(server: ChaosServer, tmp_path: Path) -> None:
    catalog_path = catalog(tmp_path, server.base_url)
    base = server.base_url.rstrip("/")
    dead, live = f"{base}/dead", f"{base}/m2"
    server.add_file(f"/m2/20240726/{B3124.filename}", FILES[B3124.path])
    installation = sp.install(
        "3.12",
        downloads_json=catalog_path,
        mirrors=[dead, live],
        install_dir=tmp_path / "a",
        retries=0,
    )
    assert runs(installation) == "Python 3.12.4\n"
    paths = [r.path for r in server.requests]
    assert paths == [f"/dead/20240726/{B3124.filename}", f"/m2/20240726/{B3124.filename}"]

    server.reset_log()
    sp.install(
        "3.12",
        downloads_json=catalog_path,
        mirrors=[dead],
        install_dir=tmp_path / "b",
        cache=tmp_path / "c2",
        retries=0,
    )
    assert [r.path for r in server.requests][-1] == B3124.path  # the original, last


def test_a_file_mirror_works(server: ChaosServer, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "20240726"
    mirror.mkdir(parents=True)
    (mirror / B3131.filename).write_bytes(FILES[B3131.path])
    installation = sp.install(
        "3.13.1",
        downloads_json=catalog(tmp_path, server.base_url),
        mirrors=[(tmp_path / "mirror").as_uri()],
        install_dir=tmp_path / "py",
    )
    assert runs(installation) == "Python 3.13.1\n"
    assert server.request_count() == 0


def test_a_url_without_the_release_prefix_is_an_error_naming_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    document = json.loads(Path(catalog(tmp_path, "http://127.0.0.1:9/")).read_text())
    document[B3124.key]["url"] = "http://127.0.0.1:9/elsewhere/c.tar.gz"
    odd = write(tmp_path / "odd.json", json.dumps(document).encode())
    env["SUREFETCH_PYTHON_INSTALL_MIRROR"] = "https://mirror.invalid/pbs"
    done = cli("install", "3.12.4", "--downloads-json", odd, env=env)
    assert done.returncode == 2
    assert "http://127.0.0.1:9/elsewhere/c.tar.gz" in done.stderr


def test_eight_processes_installing_one_key_make_one_download(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    catalog_path = catalog(tmp_path, server.base_url)
    command = [
        sys.executable,
        "-m",
        "surefetch",
        "python",
        "install",
        "3.12",
        "--downloads-json",
        catalog_path,
        "--json",
    ]
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(8)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers)
    records = [json.loads(out)["installations"][0] for out in outputs]
    assert {r["key"] for r in records} == {B3124.key}
    assert server.request_count(B3124.path) == 1


def test_install_of_three_versions_at_once(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    done = cli(
        "install",
        "3.11",
        "3.12",
        "3.13",
        "--json",
        "--downloads-json",
        catalog(tmp_path, server.base_url),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert [i["key"] for i in record["installations"]] == [B3119.key, B3124.key, B3131.key]
    assert set(record["installations"][0]) == {
        "key",
        "version",
        "path",
        "executable",
        "url",
        "sha256",
        "from_cache",
        "attempts",
        "retries",
        "resumed_bytes",
        "elapsed_s",
    }
    listing = cli("list", "--only-installed", env=env).stdout
    assert B3119.key in listing and B3131.key in listing


def test_sigkill_mid_install_then_rerun_resumes_and_nothing_half_installed_shows(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    catalog_path = catalog(tmp_path, server.base_url)
    half = len(FILES[B3124.path]) // 2
    server.script(B3124.path, [Fault.stall(120, after=half)])
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "surefetch",
            "python",
            "install",
            "3.12",
            "--downloads-json",
            catalog_path,
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    partial_dir = tmp_path / "cache" / "tmp" / "partial"
    deadline = time.monotonic() + 60
    try:
        while not any(p.stat().st_size >= half for p in partial_dir.glob("*.part")):
            assert time.monotonic() < deadline, "the install never got half way"
            assert not (tmp_path / "py" / B3124.key).exists()
            time.sleep(0.02)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert not (tmp_path / "py" / B3124.key).exists()
    server.reset_log()
    done = cli("install", "3.12", "--json", "--downloads-json", catalog_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["installations"][0]["resumed_bytes"] >= half
    assert server.requests[0].range_start >= half
    installation = sp.find("3.12")
    assert installation is not None and runs(installation) == "Python 3.12.4\n"
    assert os.listdir(tmp_path / "py" / ".temp") == []


def test_uninstall_list_dir_and_bin_dir(
    server: ChaosServer, tmp_path: Path, env: dict[str, str]
) -> None:
    catalog_path = catalog(tmp_path, server.base_url)
    done = cli(
        "install",
        "3.12.3",
        "3.12.4",
        "--bin-dir",
        str(tmp_path / "bin"),
        "--downloads-json",
        catalog_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    link = tmp_path / "py" / f"cpython-3.12-{PLATFORM}"
    assert os.readlink(link) == B3124.key
    assert (tmp_path / "bin" / "python3.12").resolve().parent.parent.name in (B3123.key, B3124.key)
    assert cli("dir", env=env).stdout.strip() == str(tmp_path / "py")
    listing = cli("list", "--downloads-json", catalog_path, env=env).stdout
    assert B3123.key in listing and "<download available>" in listing
    assert cli("uninstall", "3.12.4", env=env).returncode == 0
    assert os.readlink(link) == B3123.key  # the link follows to the newest left
    assert cli("uninstall", "--all", env=env).returncode == 0
    assert not link.is_symlink() and sp.installed() == []
    missing = cli("find", "3.12", env=env)
    assert missing.returncode == 1 and "No installed Python matches '3.12'" in missing.stderr
