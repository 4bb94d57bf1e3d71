"""surefetch.cache in one process: keys, layout, atomic commits, locks, verify, prune, clean."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

import surefetch
from surefetch.cache import (
    BUCKET_ARCHIVES,
    BUCKET_DOWNLOADS,
    BUCKET_WHEELS,
    Cache,
    CacheError,
    CleanReport,
    Entry,
    EntryMeta,
    LockTimeout,
    content_key,
    normalize_url,
    url_key,
)
from surefetch.testing._fs_faults import inject_fs_faults

URL = "https://example.org/files/data.bin"
KEY = url_key(URL)
OLD = time.time() - 7200  # older than prune's default age


@pytest.fixture(autouse=True)
def _environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SUREFETCH_NO_RETRY_DELAY", "1")
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SUREFETCH_LOCK_TIMEOUT", raising=False)
    caplog.set_level(logging.INFO, logger="surefetch")


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def meta_for(data: bytes, url: str = URL) -> EntryMeta:
    return EntryMeta(
        url=url, size=len(data), sha256=hashlib.sha256(data).hexdigest(), created=time.time()
    )


def store_file(
    cache: Cache,
    data: bytes,
    *,
    bucket: str = BUCKET_DOWNLOADS,
    key: str = KEY,
    name: str = "data.bin",
) -> Entry:
    """Fill a key the way the download layer does: under its lock, from a temporary directory."""
    with cache.lock(bucket, key), cache.temp_dir(bucket, key) as work:
        (work / name).write_bytes(data)
        return cache.commit_file(bucket, key, work / name, filename=name, meta=meta_for(data))


def store_tree(cache: Cache, *, key: str = "ab" * 32, content: str = "hello") -> Entry:
    with cache.lock(BUCKET_ARCHIVES, key), cache.temp_dir(BUCKET_ARCHIVES, key) as work:
        (work / "pkg" / "sub").mkdir(parents=True)
        (work / "pkg" / "sub" / "module.py").write_text(content)
        (work / "README").write_text("readme")
        (work / "link").symlink_to("README")
        return cache.commit_dir(BUCKET_ARCHIVES, key, work, meta=meta_for(b"archive"))


def tmp_items(cache: Cache) -> list[str]:
    return sorted(os.listdir(cache.root / "tmp"))


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "HTTPS://EXAMPLE.ORG/files/data.bin",
        "https://example.org:443/files/data.bin",
        "https://user:secret@example.org/files/data.bin",
        "https://example.org/files/data.bin#fragment",
        "  https://example.org/files/data.bin ",
    ],
)
def test_url_key_ignores_what_does_not_change_the_resource(variant: str) -> None:
    assert url_key(variant) == KEY


@pytest.mark.parametrize(
    "different",
    [
        "http://example.org/files/data.bin",
        "https://example.org:8443/files/data.bin",
        "https://example.org/FILES/data.bin",
        "https://example.org/files/data.bin?version=2",
        "https://mirror.example.org/files/data.bin",
    ],
)
def test_url_key_distinguishes_what_does(different: str) -> None:
    assert url_key(different) != KEY


def test_url_normalisation() -> None:
    assert normalize_url("HTTP://Example.ORG") == "http://example.org/"
    assert normalize_url("http://example.org:80/a?b=1#c") == "http://example.org/a?b=1"
    assert normalize_url("https://[::1]:8443/a") == "https://[::1]:8443/a"
    assert len(KEY) == 32
    assert re.fullmatch("[0-9a-f]{32}", KEY)


def test_content_key() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert content_key(digest.upper()) == digest
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        content_key("abc")


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("downloads", "../../etc"),
        ("downloads", "ABCDEF"),
        ("downloads", "a"),
        ("downloads", "ab/cd"),
        ("../x", "abcdef"),
        ("Downloads", "abcdef"),
    ],
)
def test_unsafe_buckets_and_keys_are_refused(cache: Cache, bucket: str, key: str) -> None:
    with pytest.raises(ValueError, match="is not valid"):
        cache.lookup(bucket, key)


# --- the root and settings ---------------------------------------------------------------


def test_root_comes_from_the_argument_then_the_variable_then_platformdirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Cache(tmp_path / "explicit").root == tmp_path / "explicit"
    assert Cache().root == tmp_path / "cache"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUREFETCH_CACHE_DIR", "relative")
    assert Cache().root == tmp_path / "relative"
    monkeypatch.delenv("SUREFETCH_CACHE_DIR")
    expected = Path(platformdirs.user_cache_dir("surefetch", appauthor=False))
    assert Cache().root == expected


def test_constructing_a_cache_creates_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    assert cache.lookup(BUCKET_WHEELS, KEY) is None
    assert not cache.root.exists()


def test_lock_timeout_comes_from_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Cache().lock_timeout == 600.0
    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", "2.5")
    assert Cache().lock_timeout == 2.5
    assert Cache(lock_timeout=1).lock_timeout == 1.0


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", "1e9"])
def test_an_invalid_lock_timeout_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", raw)
    with pytest.raises(surefetch.ConfigError, match="SUREFETCH_LOCK_TIMEOUT"):
        Cache()


# --- commits and lookups ---------------------------------------------------------------


def test_a_committed_file_is_found_with_its_metadata(cache: Cache) -> None:
    entry = store_file(cache, b"content")
    found = cache.lookup(BUCKET_DOWNLOADS, KEY)
    assert found == entry
    assert found.path.read_bytes() == b"content"
    assert found.path.name == "data.bin"
    assert found.meta.url == URL
    assert found.meta.size == 7
    assert found.meta.kind == "file"


def test_the_layout_is_one_directory_per_entry(cache: Cache) -> None:
    entry = store_file(cache, b"content")
    entry_dir = cache.root / "downloads-v1" / KEY[:2] / KEY
    assert entry.path == entry_dir / "file" / "data.bin"
    assert sorted(os.listdir(entry_dir)) == ["entry.json", "file"]
    record = json.loads((entry_dir / "entry.json").read_text())
    assert record["sha256"] == hashlib.sha256(b"content").hexdigest()
    assert record["filename"] == "data.bin"
    assert (cache.root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172")
    assert tmp_items(cache) == ["partial"]


def test_a_payload_may_be_named_like_the_metadata(cache: Cache) -> None:
    entry = store_file(cache, b"{}", name="entry.json")
    assert entry.path.read_bytes() == b"{}"
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) == entry


def test_a_file_whose_size_disagrees_with_its_metadata_is_refused(cache: Cache) -> None:
    with cache.temp_dir(BUCKET_DOWNLOADS, KEY) as work:
        (work / "data.bin").write_bytes(b"short")
        meta = meta_for(b"longer content")
        with pytest.raises(CacheError, match="5 bytes, the metadata says 14"):
            cache.commit_file(
                BUCKET_DOWNLOADS, KEY, work / "data.bin", filename="data.bin", meta=meta
            )
        assert (work / "data.bin").exists()
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) is None


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b"])
def test_unsafe_filenames_are_refused(cache: Cache, tmp_path: Path, name: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="filename"):
        cache.commit_file(BUCKET_DOWNLOADS, KEY, tmp_path / "f", filename=name, meta=meta_for(b"x"))


def test_a_commit_onto_an_existing_entry_keeps_theirs(cache: Cache) -> None:
    theirs = store_file(cache, b"theirs")
    with cache.temp_dir(BUCKET_DOWNLOADS, KEY) as work:
        (work / "data.bin").write_bytes(b"ours!!")
        result = cache.commit_file(
            BUCKET_DOWNLOADS, KEY, work / "data.bin", filename="data.bin", meta=meta_for(b"ours!!")
        )
        assert not (work / "data.bin").exists()
    assert result == theirs
    assert result.path.read_bytes() == b"theirs"
    assert tmp_items(cache) == ["partial"]


def test_a_committed_tree_is_found_and_described(cache: Cache) -> None:
    entry = store_tree(cache)
    assert entry.path == cache.root / "archives-v1" / "ab" / ("ab" * 32) / "tree"
    assert (entry.path / "pkg" / "sub" / "module.py").read_text() == "hello"
    assert os.readlink(entry.path / "link") == "README"
    assert entry.meta.kind == "tree"
    assert entry.meta.files == 2
    assert entry.meta.manifest is not None
    assert cache.lookup(BUCKET_ARCHIVES, "ab" * 32) == entry
    assert tmp_items(cache) == ["partial"]


def test_an_unreadable_entry_is_a_miss_and_the_next_commit_replaces_it(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    entry = store_file(cache, b"content")
    (entry.path.parent.parent / "entry.json").write_text("{not json")
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) is None
    assert "verify --fix" in caplog.text
    fresh = store_file(cache, b"fresh")
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) == fresh
    assert fresh.path.read_bytes() == b"fresh"


def test_an_entry_without_its_payload_is_a_miss(cache: Cache) -> None:
    entry = store_file(cache, b"content")
    entry.path.unlink()
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) is None


def test_persisting_an_entry_retries_spurious_errors(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    denied = PermissionError(errno.EACCES, "Access is denied")
    denied.winerror = 5  # type: ignore[attr-defined]
    with inject_fs_faults(operation="persist_dir", error=denied, times=3) as faults:
        entry = store_file(cache, b"content")
    assert faults.raised == 3
    assert entry.path.read_bytes() == b"content"
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == 3
    assert f"Retrying rename from {cache.root / 'tmp'}" in retries[0]
    assert f"to {entry.path.parent.parent} after " in retries[0]
    assert retries[0].endswith("[WinError 5] Access is denied")


def test_a_failed_persist_gives_the_source_back(cache: Cache) -> None:
    denied = PermissionError(errno.EACCES, "Access is denied")
    with cache.temp_dir(BUCKET_DOWNLOADS, KEY) as work:
        (work / "data.bin").write_bytes(b"content")
        with (
            inject_fs_faults(operation="persist_dir", error=denied, times=10_000),
            pytest.raises(surefetch.RetriesExhausted, match="Rename failed after"),
        ):
            cache.commit_file(
                BUCKET_DOWNLOADS,
                KEY,
                work / "data.bin",
                filename="data.bin",
                meta=meta_for(b"content"),
            )
        assert (work / "data.bin").read_bytes() == b"content"
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) is None
    assert tmp_items(cache) == ["partial"]


def test_remove_takes_an_entry_away_whole(cache: Cache) -> None:
    store_file(cache, b"content")
    with cache.lock(BUCKET_DOWNLOADS, KEY):
        assert cache.remove(BUCKET_DOWNLOADS, KEY) is True
        assert cache.remove(BUCKET_DOWNLOADS, KEY) is False
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) is None
    assert tmp_items(cache) == ["partial"]


# --- temporary area ----------------------------------------------------------------------


def test_temp_dirs_are_fresh_on_the_cache_filesystem_and_removed_on_exit(cache: Cache) -> None:
    with (
        cache.temp_dir(BUCKET_DOWNLOADS, KEY) as first,
        cache.temp_dir(BUCKET_DOWNLOADS, KEY) as second,
    ):
        assert first != second
        assert first.parent == cache.root / "tmp"
        assert os.listdir(first) == []
        assert first.stat().st_dev == cache.root.stat().st_dev
        (first / "f").write_text("x")
    assert not first.exists()
    assert not second.exists()
    with pytest.raises(RuntimeError), cache.temp_dir(BUCKET_DOWNLOADS, KEY) as third:
        raise RuntimeError
    assert not third.exists()


def test_the_partial_path_is_stable_and_its_directory_exists(cache: Cache) -> None:
    path = cache.partial_path(BUCKET_DOWNLOADS, KEY)
    assert path == cache.partial_path(BUCKET_DOWNLOADS, KEY)
    assert path.parent.is_dir()
    assert path.parent.parent == cache.root / "tmp"
    assert path != cache.partial_path(BUCKET_WHEELS, KEY)


# --- locks ------------------------------------------------------------------------------


class WaitingSeen(logging.Handler):
    """Sets an event when a "Waiting for another process" record is logged."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Waiting for another process"):
            self.seen.set()


@pytest.fixture
def waiting_seen() -> Iterator[WaitingSeen]:
    handler = WaitingSeen()
    logger = logging.getLogger("surefetch")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_held_lock_makes_others_wait_and_log_that_they_wait(
    cache: Cache, waiting_seen: WaitingSeen, caplog: pytest.LogCaptureFixture
) -> None:
    acquired = threading.Event()

    def other() -> None:
        with cache.lock(BUCKET_DOWNLOADS, KEY, timeout=30):
            acquired.set()

    with cache.lock(BUCKET_DOWNLOADS, KEY):
        thread = threading.Thread(target=other)
        thread.start()
        assert waiting_seen.seen.wait(30)
        assert not acquired.is_set()
    thread.join(30)
    assert acquired.is_set()
    assert f"Waiting for another process to finish downloads entry {KEY}" in caplog.text


def test_a_lock_held_past_the_timeout_raises_a_clear_error(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[BaseException] = []

    def other(timeout: float | None) -> None:
        try:
            with Cache(cache.root).lock(BUCKET_DOWNLOADS, KEY, timeout=timeout):
                pass
        except LockTimeout as error:
            errors.append(error)

    monkeypatch.setenv("SUREFETCH_LOCK_TIMEOUT", "0")
    with cache.lock(BUCKET_DOWNLOADS, KEY):
        for timeout in (0.0, None):
            thread = threading.Thread(target=other, args=(timeout,))
            thread.start()
            thread.join(30)
    assert len(errors) == 2
    message = str(errors[0])
    assert message.startswith("Timed out after 0s waiting for another process to finish")
    assert KEY in message
    assert "SUREFETCH_LOCK_TIMEOUT" in message
    assert isinstance(errors[0], surefetch.SurefetchError)


def test_locks_of_different_keys_are_independent(cache: Cache) -> None:
    with cache.lock(BUCKET_DOWNLOADS, KEY), cache.lock(BUCKET_DOWNLOADS, "cd" * 16, timeout=0):
        pass


# --- verify ------------------------------------------------------------------------------


def test_verify_finds_a_sound_cache_sound(cache: Cache) -> None:
    store_file(cache, b"content")
    store_tree(cache)
    report = cache.verify()
    assert report.sound
    assert report.checked == 2


def test_verify_reports_every_kind_of_corruption_and_fix_removes_it(cache: Cache) -> None:
    flipped = store_file(cache, b"content", key="a1" * 16)
    flipped.path.write_bytes(b"CONTENT")
    truncated = store_file(cache, b"content", key="a2" * 16)
    truncated.path.write_bytes(b"con")
    no_payload = store_file(cache, b"content", key="a3" * 16)
    no_payload.path.unlink()
    no_meta = store_file(cache, b"content", key="a4" * 16)
    (no_meta.path.parent.parent / "entry.json").unlink()
    bad_meta = store_file(cache, b"content", key="a5" * 16)
    (bad_meta.path.parent.parent / "entry.json").write_text("[]")
    tree = store_tree(cache)
    (tree.path / "pkg" / "sub" / "module.py").write_text("changed")
    stray = cache.root / "downloads-v1" / "a6" / "stray.txt"
    stray.parent.mkdir()
    stray.write_text("?")
    sound = store_file(cache, b"content", key="a7" * 16)

    report = cache.verify()
    reasons = {c.path.name: c.reason for c in report.corrupt}
    assert report.checked == 8
    assert not report.sound
    assert reasons == {
        "a1" * 16: f"the file's sha256 is {hashlib.sha256(b'CONTENT').hexdigest()}, "
        f"expected {hashlib.sha256(b'content').hexdigest()}",
        "a2" * 16: "the file has 3 bytes, expected 7",
        "a3" * 16: "the file data.bin is missing",
        "a4" * 16: "entry.json is missing",
        "a5" * 16: "unreadable entry.json: not a surefetch entry.json of format 1",
        "ab" * 32: "the tree changed since it was stored (2 files, 2 expected)",
        "stray.txt": "not a cache entry (unexpected name)",
    }
    assert report.removed == 0

    fixed = cache.verify(fix=True)
    assert fixed.removed == 7
    again = cache.verify()
    assert again.sound
    assert again.checked == 1
    assert cache.lookup(BUCKET_DOWNLOADS, "a7" * 16) == sound
    assert cache.lookup(BUCKET_DOWNLOADS, "a1" * 16) is None


def test_verify_leaves_other_layout_versions_alone(cache: Cache) -> None:
    old = cache.root / "downloads-v0" / "ab" / ("ab" * 16)
    old.mkdir(parents=True)
    assert cache.verify(fix=True).checked == 0
    assert old.exists()


def test_each_bucket_has_its_own_layout_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surefetch._cache import layout

    monkeypatch.setitem(layout.BUCKET_VERSIONS, BUCKET_WHEELS, 2)
    cache = Cache(tmp_path / "cache")
    wheel = store_file(cache, b"wheel", bucket=BUCKET_WHEELS, name="a-1.0-py3-none-any.whl")
    download = store_file(cache, b"content")
    old_wheels = cache.root / "wheels-v1" / "ab" / ("ab" * 16)
    old_wheels.mkdir(parents=True)

    assert wheel.path.parents[3].name == "wheels-v2"
    assert download.path.parents[3].name == "downloads-v1"
    assert cache.partial_path(BUCKET_WHEELS, KEY).name.startswith("wheels-v2~")
    assert layout.bucket_version("some-new-bucket") == surefetch.cache.LAYOUT_VERSION
    report = cache.verify(fix=True)
    assert (report.checked, report.corrupt) == (2, ())
    assert old_wheels.exists()
    versions = {(b.bucket, b.version) for b in cache.info().buckets}
    assert versions == {("downloads", 1), ("wheels", 1), ("wheels", 2)}


# --- prune -------------------------------------------------------------------------------


def age(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when), follow_symlinks=False)


def test_prune_removes_what_dead_writers_left_and_nothing_else(cache: Cache) -> None:
    entry = store_file(cache, b"content")
    dead_temp = Path(cache._new_temp(BUCKET_DOWNLOADS, "de" * 16))
    (dead_temp / "half.bin").write_bytes(b"x" * 100)
    age(dead_temp)
    partial = cache.partial_path(BUCKET_DOWNLOADS, "de" * 16)
    partial.write_bytes(b"y" * 50)
    sidecar = partial.with_name(partial.name + ".json")
    sidecar.write_text("{}")
    age(partial)
    age(sidecar)
    trash = cache.root / "tmp" / "trash~0123456789abcdef"
    trash.mkdir()
    young_temp = Path(cache._new_temp(BUCKET_DOWNLOADS, "cd" * 16))

    report = cache.prune()

    assert (report.temporaries, report.partials, report.trash) == (1, 2, 1)
    assert report.removed == 4
    assert report.bytes == 152
    assert not dead_temp.exists()
    assert not partial.exists()
    assert not sidecar.exists()
    assert not trash.exists()
    assert young_temp.exists()
    assert cache.lookup(BUCKET_DOWNLOADS, KEY) == entry


def test_prune_spares_temporaries_whose_key_is_locked(cache: Cache) -> None:
    key = "cd" * 16
    with cache.lock(BUCKET_DOWNLOADS, key), cache.temp_dir(BUCKET_DOWNLOADS, key) as work:
        partial = cache.partial_path(BUCKET_DOWNLOADS, key)
        partial.write_bytes(b"resumable")
        age(work)
        age(partial)
        report = cache.prune(older_than=0)
        assert report.removed == 0
        assert work.exists()
        assert partial.exists()
    assert cache.prune(older_than=0).partials == 1


def test_prune_of_a_cache_that_does_not_exist_does_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "nothing")
    assert cache.prune().removed == 0
    assert not cache.root.exists()


# --- clean and info ------------------------------------------------------------------------


def test_info_counts_entries_and_bytes_per_bucket(cache: Cache) -> None:
    store_file(cache, b"12345", key="a1" * 16)
    store_file(cache, b"123", key="a2" * 16)
    store_tree(cache)
    cache.partial_path(BUCKET_DOWNLOADS, KEY).write_bytes(b"partial")

    info = cache.info()
    buckets = {b.bucket: b for b in info.buckets}
    assert set(buckets) == {"downloads", "archives"}
    assert buckets["downloads"].entries == 2
    assert buckets["downloads"].bytes > 8  # payloads and their metadata
    assert buckets["archives"].entries == 1
    assert info.entries == 3
    assert info.bytes == buckets["downloads"].bytes + buckets["archives"].bytes
    assert info.temporary_items == 1
    assert info.temporary_bytes == 7


def test_clean_empties_the_cache(cache: Cache) -> None:
    store_file(cache, b"12345", key="a1" * 16)
    store_tree(cache)
    cache.partial_path(BUCKET_DOWNLOADS, KEY).write_bytes(b"partial")
    (cache.root / "downloads-v0").mkdir()

    report = cache.clean()

    assert report.entries == 2
    assert report.bytes > 5
    assert cache.info().entries == 0
    assert sorted(os.listdir(cache.root)) == ["CACHEDIR.TAG", "locks", "tmp"]
    assert tmp_items(cache) == ["partial"]
    assert os.listdir(cache.root / "tmp" / "partial") == []


def test_clean_waits_for_a_writer_at_work(cache: Cache, waiting_seen: WaitingSeen) -> None:
    store_file(cache, b"old", key="a1" * 16)
    reports: list[CleanReport] = []
    with cache.lock(BUCKET_DOWNLOADS, KEY):
        cleaner = threading.Thread(target=lambda: reports.append(Cache(cache.root).clean()))
        cleaner.start()
        assert waiting_seen.seen.wait(30)
        # The writer finishes while clean waits for it: its entry is part of what clean removes.
        with cache.temp_dir(BUCKET_DOWNLOADS, KEY) as work:
            (work / "data.bin").write_bytes(b"new")
            cache.commit_file(
                BUCKET_DOWNLOADS, KEY, work / "data.bin", filename="data.bin", meta=meta_for(b"new")
            )
    cleaner.join(30)
    assert reports[0].entries == 2
    assert cache.info().entries == 0


def test_a_lock_may_be_released_by_another_thread_than_took_it(cache: Cache) -> None:
    # Async callers enter and exit the lock in different worker threads.
    holder = cache.lock(BUCKET_DOWNLOADS, KEY)
    taker = threading.Thread(target=holder.__enter__)
    taker.start()
    taker.join(30)
    releaser = threading.Thread(target=holder.__exit__, args=(None, None, None))
    releaser.start()
    releaser.join(30)
    with cache.lock(BUCKET_DOWNLOADS, KEY, timeout=0):
        pass


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="names the fsynced files through /proc"
)
def test_every_name_a_new_file_entry_needs_is_fsynced_before_it_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``fsync="always"``, the payload, entry.json, the payload's name in
    file/ and the staging directory's own names are all on disk before the
    rename that publishes the entry, and they are synced only once all of them
    are in place (so that one journal commit carries them)."""
    cache = Cache(tmp_path / "cache", fsync="always")
    synced: list[str] = []
    held: list[bool] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.endswith(os.sep + "data.bin"):
            # Synced in place, after entry.json was written beside file/.
            staging = os.path.dirname(os.path.dirname(path))
            held.append(os.path.exists(os.path.join(staging, "entry.json")))
        synced.append(path)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    entry = store_file(cache, b"payload")
    monkeypatch.setattr(os, "fsync", real_fsync)
    entry_dir = entry.path.parent.parent  # <shard>/<key>/file/data.bin
    payload = next(i for i, p in enumerate(synced) if p.endswith(os.sep + "data.bin"))
    staging = os.path.dirname(os.path.dirname(synced[payload]))
    assert held == [True], synced
    # The payload in the staging directory, entry.json, file/ (the payload's
    # name), the staging directory (its two names); then the shard directory,
    # for the name that publishes the entry.
    assert synced[payload:] == [
        os.path.join(staging, "file", "data.bin"),
        os.path.join(staging, "entry.json"),
        os.path.join(staging, "file"),
        staging,
        str(entry_dir.parent),
    ], synced
