"""The ``fsync`` setting: a file entry on the disk before it appears, or by the end of its boot.

Under ``lazy`` (the default where the OS names its boot) an entry is published
without fsync and stamped with the boot; a process killed at any point loses
nothing the kernel holds (the SIGKILL sweeps in `test_kill_sweep` run in this
mode). What only an OS crash or a power loss can do, lose unsynced writes,
is simulated here the way it shows on the next boot: an ``entry.json``
stamped with another boot, beside a payload that is whole or damaged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import surefetch
from fsync_calls import counting_fsync
from surefetch import ConfigError
from surefetch._cache import durability, layout
from surefetch._cache.publish import write_meta
from surefetch._cli.hit import answer_from_cache
from surefetch.cache import BUCKET_DOWNLOADS, Cache, Entry, EntryMeta, url_key
from surefetch.testing import ChaosServer

BOOT = layout.current_boot()
needs_boot = pytest.mark.skipif(
    BOOT is None, reason="the OS does not name its boot here: every entry is fsynced"
)
URL = "https://example.org/files/data.bin"
KEY = url_key(URL)
DATA = bytes(range(256)) * 400  # over 64 KiB: hashed by hashlib, not the light sha256
OTHER_BOOT = str(uuid.UUID(int=1))


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("SUREFETCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def store(cache: Cache, data: bytes = DATA, *, key: str = KEY) -> Entry:
    meta = EntryMeta(
        url=URL, size=len(data), sha256=hashlib.sha256(data).hexdigest(), created=time.time()
    )
    with cache.lock(BUCKET_DOWNLOADS, key), cache.temp_dir(BUCKET_DOWNLOADS, key) as work:
        (work / "data.bin").write_bytes(data)
        return cache.commit_file(
            BUCKET_DOWNLOADS, key, work / "data.bin", filename="data.bin", meta=meta
        )


def stamp(entry: Entry, boot: str | None) -> None:
    """Make ``entry`` look published by ``boot``, as a restart would leave it."""
    entry_dir = str(entry.path.parent.parent)
    write_meta(entry_dir, dataclasses.replace(entry.meta, boot=boot), entry_dir, policy=None)


def restamp(entry_dir: Path, boot: str) -> dict[str, object]:
    """Rewrite the ``entry.json`` in ``entry_dir`` as ``boot`` would have written it; its record."""
    record: dict[str, object] = json.loads((entry_dir / "entry.json").read_bytes())
    record["boot"] = boot
    (entry_dir / "entry.json").write_text(json.dumps(record, indent=1))
    return record


def on_disk(entry: Entry) -> dict[str, object]:
    record: dict[str, object] = json.loads((entry.path.parent.parent / "entry.json").read_bytes())
    return record


@needs_boot
def test_a_lazy_entry_is_published_without_fsync_and_stamped_with_this_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.prepare()  # its CACHEDIR.TAG is written once, synced
    assert cache.fsync == "lazy"
    fsyncs = counting_fsync(monkeypatch)
    entry = store(cache)
    assert fsyncs == []
    assert entry.meta.boot == BOOT and on_disk(entry)["boot"] == BOOT
    # In its own boot the entry is used as it is, without hashing it again.
    monkeypatch.setattr(durability, "confirm", lambda *args: pytest.fail("checked again"))
    found = cache.lookup(BUCKET_DOWNLOADS, KEY)
    assert found is not None and found.path.read_bytes() == DATA


@pytest.mark.parametrize("how", ["always", "boot unknown"])
def test_always_and_an_unknown_boot_sync_every_entry_before_it_appears(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "always":
        monkeypatch.setenv("SUREFETCH_FSYNC", "always")
    else:
        # As outside Linux: nothing names the boot, so nothing may wait for its end.
        monkeypatch.setattr(layout, "_boot", [layout.read_boot_id(str(tmp_path / "none"))])
    cache = Cache(tmp_path / "cache")
    cache.prepare()  # its CACHEDIR.TAG is written once, synced
    fsyncs = counting_fsync(monkeypatch)
    entry = store(cache)
    # The payload, entry.json, file/, the staging directory and the shard directory.
    assert len(fsyncs) == 5
    assert entry.meta.boot is None and "boot" not in on_disk(entry)


def test_the_setting_takes_two_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Cache(tmp_path, fsync=" Always ").fsync == "always"
    with pytest.raises(ConfigError, match="fsync='sometimes' is not valid: expected one of lazy"):
        Cache(tmp_path, fsync="sometimes")
    monkeypatch.setenv("SUREFETCH_FSYNC", "never")
    with pytest.raises(ConfigError, match="SUREFETCH_FSYNC='never' is not valid"):
        Cache(tmp_path)


def test_read_boot_id_takes_a_uuid_and_nothing_else(tmp_path: Path) -> None:
    given = tmp_path / "boot_id"
    given.write_text("0F2A55C2-9B4E-4C1B-8E0A-1234567890AB\n")
    assert layout.read_boot_id(str(given)) == "0f2a55c2-9b4e-4c1b-8e0a-1234567890ab"
    for text in ("", "not a uuid", "0" * 35, "0" * 37, "0f2a55c2-9b4e-4c1b-8e0a-12345678zzab"):
        given.write_text(text)
        assert layout.read_boot_id(str(given)) is None, text
    assert layout.read_boot_id(str(tmp_path / "missing")) is None
    assert layout.read_boot_id(str(tmp_path)) is None  # a directory


def test_a_sound_entry_from_another_boot_is_checked_once_then_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(tmp_path / "cache")
    entry = store(cache)
    stamp(entry, OTHER_BOOT)
    checked: list[str] = []
    real = durability._payload_problem

    def spy(*args: object) -> str | None:
        checked.append(str(args[0]))
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(durability, "_payload_problem", spy)
    with caplog.at_level(logging.WARNING, logger="surefetch"):
        found = cache.lookup(BUCKET_DOWNLOADS, KEY)
        again = cache.lookup(BUCKET_DOWNLOADS, KEY)
    assert found is not None and again is not None
    assert found.path.read_bytes() == DATA and found.meta.boot is None
    assert len(checked) == 1
    assert "boot" not in on_disk(entry)
    assert dataclasses.replace(found.meta, boot=entry.meta.boot) == entry.meta
    assert caplog.records == []
    assert not [name for name in os.listdir(entry.path.parent.parent) if name.endswith(".tmp")]


DAMAGE = {
    "emptied": lambda path: path.write_bytes(b""),
    "cut short": lambda path: path.write_bytes(DATA[:-1000]),
    "one byte changed": lambda path: path.write_bytes(DATA[:500] + b"\xff" + DATA[501:]),
    "zeroed blocks": lambda path: path.write_bytes(bytes(len(DATA))),
    "payload gone": lambda path: path.unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_an_entry_a_crash_damaged_is_a_miss_and_is_downloaded_again(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with ChaosServer(files={"/data.bin": DATA}) as server:
        url = server.url("/data.bin")
        sha256 = hashlib.sha256(DATA).hexdigest()
        first = surefetch.fetch(url, sha256=sha256)
        restamp(first.parent.parent, OTHER_BOOT)
        DAMAGE[damage](first)
        with caplog.at_level(logging.WARNING, logger="surefetch"):
            again = surefetch.fetch(url, sha256=sha256)
        assert again.read_bytes() == DATA
        assert len(server.requests) == 2  # the damaged entry was not used
    assert any(
        "written before the system restarted" in r.getMessage()
        or "payload is missing" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    record = json.loads((again.parent.parent / "entry.json").read_bytes())
    assert record["boot"] == BOOT if BOOT is not None else "boot" not in record


def test_an_entry_replaced_while_it_is_checked_keeps_its_own_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not {os.open, os.rename} <= os.supports_dir_fd:
        pytest.skip("no dir_fd here: a checked entry's metadata is not rewritten at all")
    cache = Cache(tmp_path / "cache")
    old = store(cache)
    stamp(old, OTHER_BOOT)
    new_data = b"another version" * 10
    real = durability._payload_problem

    def replaced_meanwhile(*args: object) -> str | None:
        # Another process refreshes the key between the check and the rewrite.
        problem = real(*args)  # type: ignore[arg-type]
        cache.discard(old.path.parent.parent)
        store(cache, new_data)
        return problem

    monkeypatch.setattr(durability, "_payload_problem", replaced_meanwhile)
    checked = cache.lookup(BUCKET_DOWNLOADS, KEY)
    monkeypatch.setattr(durability, "_payload_problem", real)
    assert checked is not None and checked.meta.sha256 == old.meta.sha256
    current = cache.lookup(BUCKET_DOWNLOADS, KEY)
    assert current is not None and current.path.read_bytes() == new_data
    assert current.meta.sha256 == hashlib.sha256(new_data).hexdigest()


@needs_boot
def test_a_revalidation_keeps_the_stamp(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = store(cache)
    with cache.lock(BUCKET_DOWNLOADS, KEY):
        updated = cache.update_meta(
            BUCKET_DOWNLOADS, KEY, dataclasses.replace(entry.meta, checked=1.0, boot=None)
        )
    assert updated.meta.boot == BOOT and on_disk(entry)["boot"] == BOOT


@pytest.mark.parametrize("mode", ["lazy", "always"])
def test_a_revalidation_syncs_its_metadata_only_under_always(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 304 rewrites entry.json; lost in a crash, it only loses the news that the entry was
    current, so under ``lazy`` it is not fsynced (an entry.json emptied is a broken entry)."""
    monkeypatch.setenv("SUREFETCH_FSYNC", mode)
    cache = Cache(tmp_path / "cache")
    entry = store(cache)
    fsyncs = counting_fsync(monkeypatch)
    with cache.lock(BUCKET_DOWNLOADS, KEY):
        cache.update_meta(BUCKET_DOWNLOADS, KEY, dataclasses.replace(entry.meta, checked=1.0))
    assert on_disk(entry)["checked"] == 1.0
    # Under always: the new entry.json, then the directory holding its name.
    expected = 2 if cache.syncs_files else 0
    assert len(fsyncs) == expected


def test_a_revalidation_that_a_crash_emptied_is_a_miss_then_a_download(
    tmp_path: Path,
) -> None:
    """What an unsynced entry.json can become after a crash on some filesystems: empty."""
    with ChaosServer(files={"/files/data.bin": DATA}) as server:
        url = server.url("/files/data.bin")
        cache = tmp_path / "cache"
        first = surefetch.fetch(url, cache=cache)
        (first.parent.parent / "entry.json").write_bytes(b"")
        again = surefetch.fetch(url, cache=cache)
        assert server.request_count() == 2  # downloaded again
    assert again.read_bytes() == DATA
    assert json.loads((again.parent.parent / "entry.json").read_bytes())["size"] == len(DATA)


def test_a_read_only_cache_uses_a_sound_entry_it_cannot_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cache")
    entry = store(cache)
    stamp(entry, OTHER_BOOT)

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "rename", read_only)
    found = cache.lookup(BUCKET_DOWNLOADS, KEY)
    monkeypatch.undo()
    assert found is not None and found.path.read_bytes() == DATA
    assert on_disk(entry)["boot"] == OTHER_BOOT  # checked again by the next process
    assert not [name for name in os.listdir(entry.path.parent.parent) if name.endswith(".tmp")]


def test_the_command_line_checks_an_entry_from_another_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChaosServer(files={"/data.bin": DATA}) as server:
        url = server.url("/data.bin")
        sha256 = hashlib.sha256(DATA).hexdigest()
        path = surefetch.fetch(url, sha256=sha256)
        entry_dir = path.parent.parent
        restamp(entry_dir, OTHER_BOOT)
        # The fast path does not answer for it; the full one checks it and answers.
        assert answer_from_cache([url, "--sha256", sha256]) is None
        command = [sys.executable, "-m", "surefetch", "fetch", url, "--sha256", sha256]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(path)
        assert len(server.requests) == 1  # sound: no download
        assert "boot" not in json.loads((entry_dir / "entry.json").read_bytes())
        if BOOT is not None:
            # Stamped again with this boot's identifier: the fast path answers.
            restamp(entry_dir, BOOT)
            assert answer_from_cache([url, "--sha256", sha256, "-q"]) == 0
        # A damaged one is downloaded again by the command line too.
        restamp(entry_dir, OTHER_BOOT)
        path.write_bytes(DATA[:10])
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert Path(done.stdout.strip()).read_bytes() == DATA
        assert len(server.requests) == 2
        assert "written before the system restarted" in done.stderr


@needs_boot
def test_always_syncs_an_entry_this_boot_published_lazily_before_returning_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switching to ``always`` within a boot: its path may be handed to a program that reads
    it after a restart, so the unsynced entry is made durable once, then used as it is."""
    entry = store(Cache(tmp_path / "cache"))  # lazy: stamped with this boot
    monkeypatch.setenv("SUREFETCH_FSYNC", "always")
    cache = Cache(tmp_path / "cache")
    fsyncs = counting_fsync(monkeypatch)
    found = cache.lookup(BUCKET_DOWNLOADS, KEY)
    assert found is not None and found.meta.boot is None and found.path == entry.path
    # The payload, file/, the new entry.json, the entry directory and the shard directory.
    assert len(fsyncs) == 5
    assert "boot" not in on_disk(entry) and found.path.read_bytes() == DATA
    again = cache.lookup(BUCKET_DOWNLOADS, KEY)
    assert again is not None and len(fsyncs) == 5  # synced once


@needs_boot
@pytest.mark.parametrize("where", ["environment", "config file"])
def test_the_command_line_under_always_syncs_an_entry_published_lazily(
    where: str, tmp_path: Path
) -> None:
    with ChaosServer(files={"/data.bin": DATA}) as server:
        url = server.url("/data.bin")
        path = surefetch.fetch(url)  # lazy: stamped with this boot
        entry_dir = path.parent.parent
        assert json.loads((entry_dir / "entry.json").read_bytes())["boot"] == BOOT
        environment = dict(os.environ)
        if where == "environment":
            environment["SUREFETCH_FSYNC"] = "always"
        else:
            (tmp_path / "surefetch.toml").write_text('fsync = "always"\n')
        command = [sys.executable, "-m", "surefetch", "fetch", url]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=environment, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(path)
        assert len(server.requests) == 1  # a hit
    assert "boot" not in json.loads((entry_dir / "entry.json").read_bytes())


@pytest.mark.parametrize("mode", ["lazy", "always"])
def test_bytes_are_pushed_to_disk_while_they_arrive_only_when_the_entry_will_be_synced(
    mode: str, transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background fdatasync of a large download only shortens the commit's
    fsync: a file the cache will not fsync is left to the kernel's writeback."""
    from surefetch._http import body, sync_body, writeback
    from surefetch._http.partial import SMALL_BODY

    monkeypatch.setenv("SUREFETCH_FSYNC", mode)
    synced: list[str] = []
    real = getattr(os, "fdatasync", os.fsync)

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else "")
        real(fd)

    class Joined(writeback.Writeback):
        """Waits for its fdatasync at close, so that the test sees every one."""

        def close(self) -> None:
            pool = self._pool
            super().close()
            if pool is not None:
                pool.shutdown(wait=True)

    monkeypatch.setattr(writeback, "_WRITEBACK_EVERY", 1 << 16)
    monkeypatch.setattr(os, "fdatasync" if hasattr(os, "fdatasync") else "fsync", recording)
    monkeypatch.setattr(sync_body, "Writeback", Joined)
    monkeypatch.setattr(body, "Writeback", Joined)
    data = os.urandom(SMALL_BODY + (1 << 20))  # the aiohttp body's path for large files
    with ChaosServer(files={"/big.bin": data}) as server:
        path = surefetch.fetch(server.url("/big.bin"), cache=tmp_path / "cache")
    assert path.read_bytes() == data
    will_sync = mode == "always" or BOOT is None
    assert bool(synced) == will_sync, synced
