"""`surefetch cache ...`: show and maintain the cache.

``dir``, ``info``, ``verify [--fix]``, ``prune`` and ``clean``; each accepts
``--cache-dir DIR`` (over ``SUREFETCH_CACHE_DIR``) and ``-v`` (log retries and
waits). Expected failures print ``error: ...`` with ``Caused by:`` lines and
exit 1 (2 for an invalid setting), never a traceback. Every command but
``dir`` needs a cache at the directory (`check_cache_exists`): a directory
that does not exist, or holds other files and no cache, is a usage error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from surefetch._cache.layout import LOCKS_DIR, TAG_NAME, TMP_DIR
from surefetch._cache.store import Cache
from surefetch._cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from surefetch._cli.help import epilog
from surefetch._cli.output import configure_logging, run_reporting
from surefetch._errors import ConfigError
from surefetch._url import Redactor

Action = Callable[[Cache, argparse.Namespace], int]


_EPILOG = epilog(
    examples=["surefetch cache info", "surefetch cache verify --fix"],
    variables=["SUREFETCH_CACHE_DIR", "SUREFETCH_LOCK_TIMEOUT"],
)


def add_parser(commands: Any) -> None:
    """Register ``surefetch cache`` and its subcommands on ``commands`` (argparse subparsers)."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the option may come before or after the subcommand, and the
    # subcommand's default must not overwrite a value given before it.
    common.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the cache directory (default: $SUREFETCH_CACHE_DIR, else the user cache directory)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log every retry and every wait for another process",
    )
    parser: argparse.ArgumentParser = commands.add_parser(
        "cache",
        parents=[common],
        help="show and maintain the cache",
        description="Show and maintain the surefetch cache.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    sub = parser.add_subparsers(dest="cache_command", metavar="COMMAND")

    def add(
        name: str, action: Action, help: str, *, needs_cache: bool = True
    ) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = sub.add_parser(
            name,
            parents=[common],
            help=help,
            description=help[0].upper() + help[1:] + ".",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=_EPILOG.replace("surefetch cache info", f"surefetch cache {name}"),
        )
        command.set_defaults(handler=lambda args: _run(args, action, needs_cache=needs_cache))
        return command

    add("dir", _dir, "print the cache directory", needs_cache=False)
    add("info", _info, "show entries and sizes per bucket")
    verify = add("verify", _verify, "re-hash every entry; exit 1 if one is corrupt")
    verify.add_argument("--fix", action="store_true", help="remove the corrupt entries")
    prune = add("prune", _prune, "remove what interrupted downloads left behind")
    prune.add_argument(
        "--older-than",
        metavar="SECONDS",
        type=float,
        default=3600.0,
        help="only remove leftovers unchanged for this long (default: 3600)",
    )
    add("clean", _clean, "remove every entry, after waiting for running downloads")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stdout)
    return EXIT_USAGE


def check_cache_exists(root: Path) -> None:
    """Raise `ConfigError` (exit 2) unless ``root`` holds a cache, or is an empty directory.

    A mistyped ``--cache-dir`` must not pass ``verify`` as an empty cache, nor
    make ``clean`` tag some other directory as a cache (backup tools skip a
    directory with a ``CACHEDIR.TAG``). A cache is recognised by its tag, its
    temporary area, its locks or a bucket (``<bucket>-v<N>``).

    Example:
        >>> check_cache_exists(Path("/nonexistent/cache"))
        Traceback (most recent call last):
        ...
        surefetch._errors.ConfigError: No cache at /nonexistent/cache: the directory does not exist
    """
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        raise ConfigError(f"No cache at {root}: the directory does not exist") from None
    except NotADirectoryError:
        raise ConfigError(f"No cache at {root}: it is not a directory") from None
    ours = {TAG_NAME, TMP_DIR, LOCKS_DIR}
    if names and not any(name in ours or _BUCKET_DIR.fullmatch(name) for name in names):
        raise ConfigError(f"No cache at {root}: the directory holds other files and no {TAG_NAME}")


_BUCKET_DIR = re.compile(r"[a-z0-9_]+-v[0-9]+")


def _run(args: argparse.Namespace, action: Action, *, needs_cache: bool) -> int:
    redactor = Redactor()
    verbose = getattr(args, "verbose", 0)
    configure_logging(verbosity=verbose, redactor=redactor)

    def run() -> int:
        cache_dir = getattr(args, "cache_dir", None)
        if cache_dir is not None and not cache_dir.strip():
            raise ConfigError("--cache-dir '' is not valid: expected a directory")
        cache = Cache(cache_dir)
        if needs_cache:
            check_cache_exists(cache.root)
        return action(cache, args)

    return run_reporting(run, redactor=redactor, verbose=verbose > 0)


def human_size(size: int) -> str:
    """``size`` bytes for a person: "0 B", "512 B", "1.5 KiB", "3.0 GiB"."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _dir(cache: Cache, args: argparse.Namespace) -> int:
    print(cache.root)
    return EXIT_OK


def _info(cache: Cache, args: argparse.Namespace) -> int:
    report = cache.info()
    rows = [
        (
            bucket.bucket if bucket.version == 1 else f"{bucket.bucket} (v{bucket.version})",
            bucket.entries,
            bucket.bytes,
        )
        for bucket in report.buckets
    ]
    rows.append(("(temporary)", report.temporary_items, report.temporary_bytes))
    rows.append(("total", report.entries, report.bytes + report.temporary_bytes))
    width = max(len("bucket"), *(len(name) for name, _, _ in rows))
    print(f"Cache directory: {report.root}")
    print(f"{'bucket':<{width}}  {'entries':>8}  {'size':>10}")
    for name, entries, size in rows:
        print(f"{name:<{width}}  {entries:>8}  {human_size(size):>10}")
    return EXIT_OK


def _verify(cache: Cache, args: argparse.Namespace) -> int:
    report = cache.verify(fix=args.fix)
    for corrupt in report.corrupt:
        print(f"corrupt: {corrupt.path}: {corrupt.reason}")
    noun = "entry" if report.checked == 1 else "entries"
    if report.sound:
        print(f"Checked {report.checked} {noun}: all sound.")
        return EXIT_OK
    summary = f"Checked {report.checked} {noun}: {len(report.corrupt)} corrupt"
    if args.fix:
        print(f"{summary}, {report.removed} removed.")
    else:
        print(f"{summary}; `surefetch cache verify --fix` removes them.")
    return EXIT_FAILED


def _prune(cache: Cache, args: argparse.Namespace) -> int:
    if not args.older_than >= 0:
        raise ConfigError(f"--older-than {args.older_than} is not valid: expected seconds >= 0")
    report = cache.prune(older_than=args.older_than)
    print(
        f"Removed {report.removed} leftover item{'' if report.removed == 1 else 's'} "
        f"({human_size(report.bytes)}) from {cache.root}."
    )
    return EXIT_OK


def _clean(cache: Cache, args: argparse.Namespace) -> int:
    report = cache.clean()
    print(
        f"Removed {report.entries} entr{'y' if report.entries == 1 else 'ies'} "
        f"({human_size(report.bytes)}) from {cache.root}."
    )
    return EXIT_OK
