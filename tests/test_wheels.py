"""The built-wheel cache: build once through the real backends, found ever after.

Every build here but the ``isolated_build`` ones runs without isolation,
with the backends installed in the test environment: no network. The sdists
are made by the tests (`sdists`), and their in-tree backend wrapper records
each backend process, which is how a hit is shown to run none.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from sdists import backend_processes, has_compiler, make_sdist, wheel_builds
from surefetch import wheels
from surefetch.cache import Cache
from surefetch.testing import ChaosServer, Fault, inject_fs_faults, no_wait

BUCKET_DIR = "built-wheels-v1"


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="surefetch")


def entries(cache: Path) -> list[Path]:
    bucket = cache / BUCKET_DIR
    return sorted(bucket.glob("*/*")) if bucket.exists() else []


def leftovers(cache: Path) -> list[str]:
    tmp = cache / "tmp"
    return sorted(p.name for p in tmp.iterdir() if p.name != "partial") if tmp.exists() else []


def windows_error(winerror: int, strerror: str) -> OSError:
    error = OSError(errno.EACCES, strerror)
    error.winerror = winerror  # type: ignore[attr-defined]
    return error


WINDOWS_ERRORS = [
    (5, "Access is denied"),
    (32, "The process cannot access the file because it is being used by another process"),
    (33, "The process cannot access the file because another process has locked a portion"),
]


@pytest.mark.parametrize("backend", ["setuptools", "flit", "hatchling"])
def test_cold_build_then_a_hit_that_runs_no_backend(tmp_path: Path, backend: str) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend=backend, record=record)
    cache = tmp_path / "cache"

    cold = wheels.build_result(sdist, isolation=False, cache=cache)
    processes = backend_processes(record)
    warm = wheels.build_result(sdist, isolation=False, cache=cache)

    assert not cold.from_cache and warm.from_cache
    assert warm.path == cold.path and cold.path.is_file()
    assert cold.name == f"demo-{backend}" and cold.version == "1.0"
    assert any(tag.endswith("-none-any") for tag in cold.tags)
    assert processes >= 1 and backend_processes(record) == processes  # the hit ran none
    assert len(wheel_builds(record)) == 1
    record_json = json.loads((cold.path.parent / "build.json").read_text())
    assert record_json["backend"] == "_recording"
    assert record_json["wheel_sha256"] == cold.wheel_sha256 == warm.wheel_sha256
    assert record_json["sdist_sha256"] == cold.sdist_sha256
    assert wheels.find(cold.sdist_sha256, cache=cache) == cold.path
    with zipfile.ZipFile(cold.path) as archive:
        assert any(n.endswith(".dist-info/RECORD") for n in archive.namelist())
    assert leftovers(cache) == []


@pytest.mark.skipif(not has_compiler(), reason="no C compiler (cc or gcc) on this machine")
def test_a_c_extension_gets_a_platform_tag_and_is_found_by_sys_tags(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="setuptools", record=record, extension=True)
    cache = tmp_path / "cache"
    built = wheels.build_result(sdist, isolation=False, cache=cache)
    assert not any(tag.endswith("-any") for tag in built.tags)
    assert wheels.build(sdist, isolation=False, cache=cache) == built.path
    assert len(wheel_builds(record)) == 1
    assert wheels.find(built.sdist_sha256, cache=cache) == built.path
    # Asked by an interpreter that did not build it, the tags decide (packaging.tags).
    marker = next(built.path.parent.glob("built-by-*"))
    marker.unlink()
    assert wheels.find(built.sdist_sha256, cache=cache) == built.path


@pytest.mark.isolated_build
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["setuptools", "flit", "hatchling"])
def test_isolated_build_takes_the_backend_from_the_configured_index(
    tmp_path: Path, backend: str
) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend=backend, record=record)
    cache = tmp_path / "cache"
    built = wheels.build_result(sdist, cache=cache)  # isolation=True
    assert not built.from_cache and built.path.is_file()
    assert json.loads((built.path.parent / "build.json").read_text())["isolation"] is True
    assert wheels.build(sdist, cache=cache) == built.path
    assert len(wheel_builds(record)) == 1


def test_rebuild_builds_again_and_replaces_the_wheel(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="flit", record=record)
    cache = tmp_path / "cache"
    first = wheels.build_result(sdist, isolation=False, cache=cache)
    again = wheels.build_result(sdist, isolation=False, cache=cache, rebuild=True)
    assert not again.from_cache and again.path == first.path and again.path.is_file()
    assert len(wheel_builds(record)) == 2
    assert len(entries(cache)) == 1


def test_config_settings_are_part_of_the_key(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="flit", record=record)
    cache = tmp_path / "cache"
    plain = wheels.build_result(sdist, isolation=False, cache=cache)
    settings = {"flavour": "extra"}
    tuned = wheels.build_result(sdist, isolation=False, cache=cache, config_settings=settings)
    assert not tuned.from_cache and tuned.path != plain.path
    assert wheel_builds(record) == ["build_wheel None", "build_wheel {'flavour': 'extra'}"]
    assert wheels.find(plain.sdist_sha256, config_settings=settings, cache=cache) == tuned.path
    assert wheels.find(plain.sdist_sha256, config_settings={"flavour": "x"}, cache=cache) is None


def test_a_failing_backend_gives_its_output_and_caches_nothing(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record", mode="fail")
    cache = tmp_path / "cache"
    with pytest.raises(wheels.BuildError) as caught:
        wheels.build(sdist, isolation=False, cache=cache)
    assert str(caught.value) == f"Failed to build demo_flit-1.0 from {sdist}"
    cause = caught.value.__cause__
    assert isinstance(cause, wheels.BackendError)
    assert str(cause) == "The build backend exited with status 3"
    assert "fatal: the flux capacitor is missing" in cause.output
    assert entries(cache) == [] and leftovers(cache) == []


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("corrupt", "is not a valid zip file"), ("mislabelled", "version 9.9, but the sdist")],
)
def test_a_bad_wheel_from_the_backend_is_refused(tmp_path: Path, mode: str, reason: str) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record", mode=mode)
    cache = tmp_path / "cache"
    with pytest.raises(wheels.BuildError) as caught:
        wheels.build(sdist, isolation=False, cache=cache)
    assert isinstance(caught.value.__cause__, wheels.WheelCheckError)
    assert reason in str(caught.value.__cause__)
    assert entries(cache) == [] and leftovers(cache) == []


def test_a_wrong_sha256_for_a_local_sdist_is_refused(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    from surefetch import IntegrityError

    with pytest.raises(IntegrityError, match="Hash mismatch"):
        wheels.build(sdist, sha256="0" * 64, isolation=False, cache=tmp_path / "cache")


def test_an_sdist_url_is_fetched_through_resets(tmp_path: Path) -> None:
    record = tmp_path / "record"
    sdist = make_sdist(tmp_path, backend="flit", record=record)
    data = sdist.read_bytes()
    cache = tmp_path / "cache"
    with ChaosServer(files={"/pkgs/demo_flit-1.0.tar.gz": data}) as server:
        path = "/pkgs/demo_flit-1.0.tar.gz"
        server.script(path, [Fault.reset_after(len(data) // 3), Fault.reset_after(len(data) // 2)])
        url = server.url(path)
        import hashlib

        sha256 = hashlib.sha256(data).hexdigest()
        with no_wait():
            built = wheels.build_result(url, sha256=sha256, isolation=False, cache=cache)
        again = wheels.build_result(url, sha256=sha256, isolation=False, cache=cache)
        assert server.request_count(path) == 3  # two resets, one resume; the hit asks nothing
    assert not built.from_cache and again.from_cache and again.path == built.path
    assert len(wheel_builds(record)) == 1


@pytest.mark.parametrize(("winerror", "strerror"), WINDOWS_ERRORS)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_persist_rides_out_windows_errors_below_the_budget(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    winerror: int,
    strerror: str,
    flavour: str,
) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    cache = tmp_path / "cache"
    error = windows_error(winerror, strerror)
    with no_wait(), inject_fs_faults(operation="persist_dir", error=error, times=3) as faults:
        if flavour == "sync":
            path = wheels.build(sdist, isolation=False, cache=cache)
        else:
            path = asyncio.run(wheels.abuild(sdist, isolation=False, cache=cache))
    assert faults.raised == 3 and path.is_file()
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying ")]
    assert len(retries) == 3
    pattern = (
        rf"Retrying rename from {re.escape(str(cache / 'tmp'))}/\S+ to "
        rf"{re.escape(str(cache / BUCKET_DIR))}/\S+ after \d+\.\d\ds "
        rf"\(retry 1 of \d+\): \[WinError {winerror}\] {re.escape(strerror)}"
    )
    assert re.fullmatch(pattern, retries[0]), retries[0]
    assert leftovers(cache) == []


@pytest.mark.parametrize(("winerror", "strerror"), WINDOWS_ERRORS)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_persist_beyond_the_budget_names_both_paths_and_leaves_nothing(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    winerror: int,
    strerror: str,
    flavour: str,
) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    cache = tmp_path / "cache"
    error = windows_error(winerror, strerror)
    with (
        no_wait(),
        inject_fs_faults(operation="persist_dir", error=error, times=100_000),
        pytest.raises(wheels.BuildError) as caught,
    ):
        if flavour == "sync":
            wheels.build(sdist, isolation=False, cache=cache)
        else:
            asyncio.run(wheels.abuild(sdist, isolation=False, cache=cache))
    persist = caught.value.__cause__
    assert isinstance(persist, wheels.PersistError)
    assert re.fullmatch(
        rf"Failed to write to the built-wheel cache: failed to rename "
        rf"{re.escape(str(cache / 'tmp'))}/\S+ to {re.escape(str(cache / BUCKET_DIR))}/\S+",
        str(persist),
    )
    exhausted = persist.__cause__
    assert re.fullmatch(r"Rename failed after \d+ retries in \d+\.\ds", str(exhausted))
    assert getattr(exhausted.__cause__, "winerror", None) == winerror
    assert sum(r.getMessage().startswith("Retrying rename") for r in caplog.records) >= 2
    assert entries(cache) == [] and leftovers(cache) == []


def _chattr(flag: str, path: Path) -> bool:
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


def test_a_real_eperm_window_on_the_shard_is_ridden_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    cache = tmp_path / "cache"
    import hashlib

    shard = cache / BUCKET_DIR / hashlib.sha256(sdist.read_bytes()).hexdigest()[:2]
    shard.mkdir(parents=True)
    if not _chattr("+i", shard):
        pytest.skip("chattr +i is not possible here (no chattr, not root, or the filesystem)")
    timer = threading.Timer(0.5, _chattr, args=("-i", shard))
    try:
        timer.start()
        path = wheels.build(sdist, isolation=False, cache=cache)  # real waits: the window
    finally:
        timer.cancel()
        _chattr("-i", shard)
    assert path.is_file() and path.is_relative_to(shard)
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying ")]
    assert retries and all("[Errno 1] Operation not permitted" in m for m in retries)


def test_offline_isolated_miss_fails_and_no_isolation_builds(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    cache = tmp_path / "cache"
    from surefetch import OfflineError

    with pytest.raises(OfflineError, match="offline mode is on"):
        wheels.build(sdist, cache=cache, offline=True)
    built = wheels.build(sdist, cache=cache, offline=True, isolation=False)
    assert wheels.build(sdist, cache=cache, offline=True) == built  # a hit needs no index


def test_verify_finds_a_damaged_wheel_and_fix_removes_it(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, backend="flit", record=tmp_path / "record")
    cache = tmp_path / "cache"
    built = wheels.build(sdist, isolation=False, cache=cache)
    assert Cache(cache).verify().sound
    os.chmod(built, 0o644)
    with open(built, "r+b") as file:
        file.seek(-30, os.SEEK_END)
        file.write(b"\0" * 10)
    report = Cache(cache).verify(fix=True)
    assert not report.sound and report.removed == 1
    assert "the tree changed" in report.corrupt[0].reason
    assert entries(cache) == []
    assert not wheels.build_result(sdist, isolation=False, cache=cache).from_cache


def test_verify_checks_that_built_wheels_are_sound_zips(tmp_path: Path) -> None:
    import time

    from surefetch.cache import EntryMeta

    cache = Cache(tmp_path / "cache")
    key = "ab" * 32 + "-" + "0" * 16 + "-" + "1" * 16
    with cache.lock("built-wheels", key), cache.temp_dir("built-wheels", key) as work:
        (work / "demo-1.0-py3-none-any.whl").write_bytes(b"not a zip at all")
        meta = EntryMeta(url="demo-1.0.tar.gz", size=1, sha256="ab" * 32, created=time.time())
        cache.commit_dir("built-wheels", key, work, meta=meta)
    report = cache.verify()
    assert [c.reason for c in report.corrupt] == [
        "the wheel demo-1.0-py3-none-any.whl is not a valid zip file: File is not a zip file"
    ]
