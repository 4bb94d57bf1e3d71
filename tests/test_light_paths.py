"""What each fast entry point may load: start-up time is part of the interface.

Each entry point runs in a fresh interpreter; the surefetch modules it loads
must be among those listed for it, and none of the heavy libraries may load.
A module added to a light path has to be added here, on purpose.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from surefetch.testing import ChaosServer

HEAVY = ("asyncio", "aiohttp", "rich", "argparse", "filelock", "zstandard", "tarfile", "ssl")

VERSION = {
    "surefetch",
    "surefetch._cli",
    "surefetch._cli.main",
    "surefetch._cli.exit_codes",
    "surefetch._version",
}
IMPORT = {"surefetch", "surefetch._version"}
CLI_HIT = VERSION | {
    "surefetch._cli.hit",
    "surefetch._cache",
    "surefetch._cache.layout",
    "surefetch._cache.freshness",
    "surefetch._dirs",
    "surefetch._pyproject",
    "surefetch._config_snapshot",
}
LIBRARY_HIT = IMPORT | {
    "surefetch._errors",
    "surefetch._log",
    "surefetch._url",
    "surefetch._config",
    "surefetch._config_snapshot",
    "surefetch._pyproject",
    "surefetch._dirs",
    "surefetch._retry",
    "surefetch._retry.classify",
    "surefetch._cache",
    "surefetch._cache.layout",
    "surefetch._cache.names",
    "surefetch._cache.entry",
    "surefetch._cache.durability",
    "surefetch._cache.freshness",
    "surefetch._cache.store",
    "surefetch._http",
    "surefetch._http.aiohttp_support",
    "surefetch._fetch",
    "surefetch._fetch.request",
    "surefetch._fetch.options",
    "surefetch._fetch.sync_api",
    "surefetch._fetch.transport",
}
PYTHON_FIND = IMPORT | {
    "surefetch.python",
    "surefetch._errors",
    "surefetch._config",
    "surefetch._config_snapshot",
    "surefetch._dirs",
    "surefetch._python",
    "surefetch._python.layout",
    "surefetch._python.platform",
    "surefetch._python.requests",
}

# The names to look for are taken off the command line first: the code under
# test may replace sys.argv (a command line's entry point does).
PROLOGUE = "import sys\n_HEAVY = sys.argv.pop().split(',')\n"
REPORT = (
    "import sys; mods = sorted(m for m in sys.modules if m.split('.')[0] == 'surefetch'); "
    "heavy = sorted(m for m in _HEAVY if m in sys.modules); "
    "print(repr((mods, heavy)), file=sys.stderr)"
)


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A URL whose file is in a cache, and that cache; the server is gone afterwards."""
    import surefetch

    cache = tmp_path_factory.mktemp("cache")
    with ChaosServer(files={"/tool-1.0.tar.gz": b"payload" * 100}) as server:
        url = server.url("/tool-1.0.tar.gz")
        surefetch.fetch(url, cache=cache)
    return url, cache


def loaded(
    code: str, *args: str, cwd: Path, heavy: tuple[str, ...] = HEAVY
) -> tuple[set[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", f"{PROLOGUE}{code}\n{REPORT}", *args, ",".join(heavy)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    modules, heavy = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    return set(modules), heavy


def test_import_surefetch(tmp_path: Path) -> None:
    modules, heavy = loaded("import surefetch", cwd=tmp_path)
    assert modules <= IMPORT and heavy == []


def test_version(tmp_path: Path) -> None:
    code = (
        "import sys; sys.argv = ['surefetch', '--version']\n"
        "from surefetch._cli.main import main\n"
        "main()"
    )
    modules, heavy = loaded(code, cwd=tmp_path)
    assert sorted(modules - VERSION) == [] and heavy == []


def test_cli_cache_hit(cached: tuple[str, Path], tmp_path: Path) -> None:
    url, cache = cached
    code = (
        "import os, sys; os.environ['SUREFETCH_CACHE_DIR'] = sys.argv[1]\n"
        "sys.argv = ['surefetch', 'fetch', sys.argv[2]]\n"
        "from surefetch._cli.main import main\n"
        "assert main() == 0"
    )
    # The entry is stamped with this boot (`_cache.durability`): the hit reads
    # the boot id (`layout.current_boot`), and must not pay for logging or json.
    lighter = (*HEAVY, "logging", "json", "contextlib")
    modules, heavy = loaded(code, str(cache), url, cwd=tmp_path, heavy=lighter)
    assert sorted(modules - CLI_HIT) == [] and heavy == []


def test_library_cache_hit(cached: tuple[str, Path], tmp_path: Path) -> None:
    url, cache = cached
    code = (
        "import sys, surefetch\n"
        "path = surefetch.fetch(sys.argv[2], cache=sys.argv[1])\n"
        "assert path.read_bytes() == b'payload' * 100"
    )
    modules, heavy = loaded(code, str(cache), url, cwd=tmp_path)
    assert sorted(modules - LIBRARY_HIT) == [] and heavy == []


def test_python_find(tmp_path: Path) -> None:
    """`surefetch.python.find` reads the install directory: no asyncio, no HTTP stack, no
    catalog (pbs-installer)."""
    code = (
        "import sys, surefetch.python\n"
        "assert surefetch.python.find('3.12', install_dir=sys.argv[1]) is None\n"
        "assert 'pbs_installer' not in sys.modules"
    )
    modules, heavy = loaded(code, str(tmp_path), cwd=tmp_path)
    assert sorted(modules - PYTHON_FIND) == [] and heavy == []


# `surefetch wheel SDIST` and `surefetch.wheels.find` answered from the cache:
# no build machinery, no asyncio, no HTTP stack (and, for a pure wheel, no packaging).
WHEEL_CLI_HIT = CLI_HIT | {
    "surefetch._cli.wheel_hit",
    "surefetch._wheels",
    "surefetch._wheels.names",
}
WHEEL_FIND = IMPORT | {
    "surefetch.wheels",
    "surefetch._wheels",
    "surefetch._wheels.names",
    "surefetch._cache",
    "surefetch._cache.layout",
}
WHEEL_HEAVY = (*HEAVY, "build", "pyproject_hooks", "packaging.tags", "subprocess")


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A pure sdist whose wheel is in a cache: (sdist, cache, sdist sha256)."""
    from sdists import make_sdist
    from surefetch import wheels

    directory = tmp_path_factory.mktemp("wheel")
    sdist = make_sdist(directory, backend="flit", record=directory / "record")
    cache = directory / "cache"
    built = wheels.build_result(sdist, isolation=False, cache=cache)
    return sdist, cache, built.sdist_sha256


def loaded_heavy(code: str, *args: str, cwd: Path) -> tuple[set[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", f"{PROLOGUE}{code}\n{REPORT}", *args, ",".join(WHEEL_HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    modules, heavy = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    return set(modules), heavy


def test_cli_wheel_hit(built_wheel: tuple[Path, Path, str], tmp_path: Path) -> None:
    sdist, cache, _ = built_wheel
    code = (
        "import os, sys; os.environ['SUREFETCH_CACHE_DIR'] = sys.argv[1]\n"
        "sys.argv = ['surefetch', 'wheel', sys.argv[2]]\n"
        "from surefetch._cli.main import main\n"
        "assert main() == 0"
    )
    modules, heavy = loaded_heavy(code, str(cache), str(sdist), cwd=tmp_path)
    assert sorted(modules - WHEEL_CLI_HIT) == [] and heavy == []


def test_wheels_find(built_wheel: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, cache, sha256 = built_wheel
    code = (
        "import sys\n"
        "from surefetch import wheels\n"
        "assert wheels.find(sys.argv[2], cache=sys.argv[1]) is not None"
    )
    modules, heavy = loaded_heavy(code, str(cache), sha256, cwd=tmp_path)
    assert sorted(modules - WHEEL_FIND) == [] and heavy == []


def test_cli_wheel_hit_of_a_platform_wheel_this_interpreter_built(tmp_path: Path) -> None:
    from sdists import has_compiler, make_sdist
    from surefetch import wheels

    if not has_compiler():
        pytest.skip("no C compiler (cc or gcc) to build a platform wheel with")
    sdist = make_sdist(tmp_path, backend="setuptools", record=tmp_path / "record", extension=True)
    cache = tmp_path / "cache"
    wheels.build(sdist, isolation=False, cache=cache)
    code = (
        "import os, sys; os.environ['SUREFETCH_CACHE_DIR'] = sys.argv[1]\n"
        "sys.argv = ['surefetch', 'wheel', sys.argv[2]]\n"
        "from surefetch._cli.main import main\n"
        "assert main() == 0"
    )
    modules, heavy = loaded_heavy(code, str(cache), str(sdist), cwd=tmp_path)
    assert sorted(modules - WHEEL_CLI_HIT) == [] and heavy == []


# A miss of one file (issue 14): downloaded on the standard-library transport,
# so neither asyncio nor aiohttp (nor the thread pools, nor urllib.request when
# no proxy is set) is loaded; nor is filelock, whose import alone cost a miss
# more than 20 ms: the per-key lock is taken with fcntl. argparse and ssl
# are: the command line and http.client need them. Nor is logging, while
# nothing is logged that anyone can see (`surefetch._log`).
MISS_HEAVY = (
    "logging",
    "asyncio",
    "aiohttp",
    "rich",
    "zstandard",
    "tarfile",
    "concurrent.futures",
    "urllib.request",
    "filelock",
    "surefetch._run_sync",
    "surefetch._fetch.async_api",
)


def loaded_on_miss(code: str, *args: str, cwd: Path) -> tuple[set[str], list[str]]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy") and name != "SUREFETCH_TRANSPORT"
    }
    done = subprocess.run(
        [sys.executable, "-c", f"{PROLOGUE}{code}\n{REPORT}", *args, ",".join(MISS_HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=environment,
    )
    modules, heavy = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    return set(modules), heavy


@pytest.fixture(scope="module")
def small_file() -> Iterator[str]:
    with ChaosServer(files={"/small-1.0.txt": b"payload" * 100}) as server:
        yield server.url("/small-1.0.txt")


def test_cli_miss_loads_no_asyncio_nor_aiohttp(small_file: str, tmp_path: Path) -> None:
    code = (
        "import os, sys; os.environ['SUREFETCH_CACHE_DIR'] = sys.argv[1]\n"
        "sys.argv = ['surefetch', 'fetch', '-q', sys.argv[2]]\n"
        "from surefetch._cli.main import main\n"
        "assert main() == 0\n"
        "assert 'surefetch._http.sync_attempt' in sys.modules  # it did download"
    )
    _, heavy = loaded_on_miss(code, str(tmp_path / "cache"), small_file, cwd=tmp_path)
    assert heavy == []
    assert list((tmp_path / "cache").rglob("small-1.0.txt"))


def test_library_miss_loads_no_asyncio_nor_aiohttp(small_file: str, tmp_path: Path) -> None:
    code = (
        "import sys, surefetch\n"
        "path = surefetch.fetch(sys.argv[2], cache=sys.argv[1])\n"
        "assert path.read_bytes() == b'payload' * 100\n"
        "assert 'surefetch._http.sync_attempt' in sys.modules  # it did download"
    )
    _, heavy = loaded_on_miss(code, str(tmp_path / "cache"), small_file, cwd=tmp_path)
    assert heavy == []


# A plain-http miss of a small file through the command line (issue 14): the
# surefetch modules it may load, the standard-library modules it must not
# (none of them needed for plain http: the idna codec comes with a host given
# as text to getaddrinfo, the rest with a progress bar, a subprocess, a
# thread pool or a proxy), and the dataclasses it may define. Defining one
# costs about a millisecond of start-up, so a new dataclass on this path is
# a choice to make here, on purpose (a named tuple or a class with __slots__
# costs a tenth or less).
CLI_MISS = CLI_HIT | {
    "surefetch._cache.durability",
    "surefetch._cache.entry",
    "surefetch._cache.lock",
    "surefetch._cache.names",
    "surefetch._cache.oslock",
    "surefetch._cache.publish",
    "surefetch._cache.store",
    "surefetch._cli.fetch",
    "surefetch._cli.help",
    "surefetch._cli.interrupts",
    "surefetch._cli.output",
    "surefetch._config",
    "surefetch._errors",
    "surefetch._log",
    "surefetch._fetch",
    "surefetch._fetch.commit",
    "surefetch._fetch.disk_full",
    "surefetch._fetch.options",
    "surefetch._fetch.request",
    "surefetch._fetch.single_flight",
    "surefetch._fetch.sync_api",
    "surefetch._fetch.transport",
    "surefetch._fetch.sync_file",
    "surefetch._fetch.url_download",
    "surefetch._fs",
    "surefetch._fs.faults",
    "surefetch._fs.ops",
    "surefetch._fs.policy",
    "surefetch._fs.tree",
    "surefetch._http",
    "surefetch._http.exchange",
    "surefetch._http.headers",
    "surefetch._http.host_budget",
    "surefetch._http.netrc_auth",
    "surefetch._http.partial",
    "surefetch._http.proxy_env",
    "surefetch._http.redirects",
    "surefetch._http.resume",
    "surefetch._http.stats",
    "surefetch._http.stdlib_pool",
    "surefetch._http.sync_attempt",
    "surefetch._http.sync_body",
    "surefetch._http.tls",
    "surefetch._http.writeback",
    "surefetch._retry",
    "surefetch._retry.budget",
    "surefetch._retry.classify",
    "surefetch._retry.engine",
    "surefetch._retry.events",
    "surefetch._retry.loops",
    "surefetch._retry.policy",
    "surefetch._url",
}
PLAIN_MISS_HEAVY = (
    *MISS_HEAVY,
    "encodings.idna",
    "unicodedata",
    "subprocess",
    "multiprocessing",
    "zipfile",
    "mimetypes",
    "http.cookiejar",
    "uuid",
)
# Public records (and those `dataclasses.replace` is used on) stay dataclasses.
CLI_MISS_DATACLASSES = {
    "surefetch._cache.entry.Entry",
    "surefetch._cache.entry.EntryMeta",
    "surefetch._config.Setting",
    "surefetch._fetch.options.FetchArgs",
    "surefetch._fetch.options.Options",
    "surefetch._fetch.request.FetchRequest",
    "surefetch._fetch.request.FetchResult",
    "surefetch._fetch.request.Resolved",
    "surefetch._fs.policy.FsClassifier",
    "surefetch._fs.tree._Level",
    "surefetch._http.resume.Validator",
    "surefetch._retry.classify.Decision",
    "surefetch._retry.events.RetryEvent",
    "surefetch._retry.policy.RetryPolicy",
}
DATACLASSES = (
    "import sys; print(repr(sorted("
    "f'{m}.{n}' for m in list(sys.modules) if m.split('.')[0] == 'surefetch' "
    "for n, v in vars(sys.modules[m]).items() "
    "if isinstance(v, type) and v.__module__ == m and '__dataclass_fields__' in vars(v))))"
)


@pytest.mark.parametrize("verbosity", [[], ["-q"]], ids=["default", "quiet"])
def test_cli_miss_of_a_small_plain_http_file_loads_the_light_set(
    small_file: str, tmp_path: Path, verbosity: list[str]
) -> None:
    code = (
        "import sys\n"
        "cache, url = sys.argv[1:3]\n"
        f"sys.argv = ['surefetch', 'fetch', *{verbosity!r}, url, '--cache-dir', cache]\n"
        "from surefetch._cli.main import main\n"
        "assert main() == 0\n"
        "assert 'surefetch._http.sync_attempt' in sys.modules  # it did download\n"
        f"{DATACLASSES}"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy") and not name.startswith("SUREFETCH_")
    }
    cache, heavy_names = str(tmp_path / "cache"), ",".join(PLAIN_MISS_HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", f"{PROLOGUE}{code}\n{REPORT}", cache, small_file, heavy_names],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=environment,
    )
    modules, heavy = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    defined = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert sorted(set(modules) - CLI_MISS) == [] and heavy == []
    assert sorted(set(defined) - CLI_MISS_DATACLASSES) == []
    assert list((tmp_path / "cache").rglob("small-1.0.txt"))


def test_library_fetch_many_miss_loads_no_asyncio_nor_aiohttp(
    small_file: str, tmp_path: Path
) -> None:
    # Plain files: threads on the standard-library transport, no event loop.
    code = (
        "import sys, surefetch\n"
        "paths = surefetch.fetch_many([sys.argv[2]] * 3, cache=sys.argv[1])\n"
        "assert [p.read_bytes() for p in paths] == [b'payload' * 100] * 3\n"
        "assert 'surefetch._fetch.sync_many' in sys.modules  # it did download on threads"
    )
    _, heavy = loaded_on_miss(code, str(tmp_path / "cache"), small_file, cwd=tmp_path)
    assert heavy == []
