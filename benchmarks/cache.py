"""What a cache hit costs: `Cache.lookup` of an existing entry, through the library.

Run by hand (it is not a test)::

    PYTHONPATH=src python benchmarks/cache.py

Each case runs in batches timed with `timeit`; the table shows the median and
the best batch, per call, against the target of 50 µs for a hit.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable

from surefetch.cache import (
    BUCKET_ARCHIVES,
    BUCKET_DOWNLOADS,
    Cache,
    EntryMeta,
    content_key,
    url_key,
)

TARGET_US = 50.0
REPEAT = 9


def fill(cache: Cache) -> tuple[str, str]:
    """One file entry and one tree entry; returns their keys."""
    data = b"x" * 4096
    meta = EntryMeta(
        url="https://example.org/pkg-1.0.tar.gz",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        created=time.time(),
    )
    file_key = url_key(meta.url)
    with cache.lock(BUCKET_DOWNLOADS, file_key), cache.temp_dir(BUCKET_DOWNLOADS, file_key) as work:
        (work / "pkg-1.0.tar.gz").write_bytes(data)
        cache.commit_file(
            BUCKET_DOWNLOADS,
            file_key,
            work / "pkg-1.0.tar.gz",
            filename="pkg-1.0.tar.gz",
            meta=meta,
        )
    tree_key = content_key(meta.sha256)
    with cache.lock(BUCKET_ARCHIVES, tree_key), cache.temp_dir(BUCKET_ARCHIVES, tree_key) as work:
        for index in range(20):
            (work / f"module{index}.py").write_text("pass\n")
        cache.commit_dir(BUCKET_ARCHIVES, tree_key, work, meta=meta)
    return file_key, tree_key


def per_call_us(fn: Callable[[], object]) -> tuple[float, float]:
    """(median, best) microseconds per call."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # enough calls for a batch of at least 0.2 s
    batches = [seconds / number * 1e6 for seconds in timer.repeat(repeat=REPEAT, number=number)]
    return statistics.median(batches), min(batches)


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        cache = Cache(root)
        file_key, tree_key = fill(cache)
        missing = url_key("https://example.org/not-cached.whl")
        assert cache.lookup(BUCKET_DOWNLOADS, file_key) is not None
        assert cache.lookup(BUCKET_ARCHIVES, tree_key) is not None
        cases: list[tuple[str, Callable[[], object], bool]] = [
            ("hit: file entry", lambda: cache.lookup(BUCKET_DOWNLOADS, file_key), True),
            ("hit: tree entry", lambda: cache.lookup(BUCKET_ARCHIVES, tree_key), True),
            (
                "hit: url_key + lookup",
                lambda: cache.lookup(
                    BUCKET_DOWNLOADS, url_key("https://example.org/pkg-1.0.tar.gz")
                ),
                True,
            ),
            ("miss", lambda: cache.lookup(BUCKET_DOWNLOADS, missing), False),
        ]
        print(f"{'case':<24} {'median µs':>10} {'best µs':>10} {'target µs':>10}  ok")
        for name, fn, is_hit in cases:
            median, best = per_call_us(fn)
            target = f"{TARGET_US:.0f}" if is_hit else "-"
            ok = ("yes" if median < TARGET_US else "NO") if is_hit else ""
            print(f"{name:<24} {median:>10.1f} {best:>10.1f} {target:>10}  {ok}")


if __name__ == "__main__":
    main()
