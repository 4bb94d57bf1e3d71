"""`surefetch wheel`: build wheels from sdists once, and print where the cached ones are."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from surefetch._cli.exit_codes import EXIT_OK
from surefetch._cli.output import configure_logging, run_reporting
from surefetch._errors import ConfigError
from surefetch._url import Redactor


def add_parser(commands: Any) -> None:
    """Register ``surefetch wheel`` on ``commands`` (argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "wheel",
        help="build a wheel from each sdist once (or find it in the cache) and print its path",
        description="Build a wheel from each SDIST (a URL or a local .tar.gz/.zip) through its "
        "PEP 517 backend, once: the wheel is kept in the cache and found there again.",
    )
    parser.add_argument("sdists", metavar="SDIST", nargs="+")
    parser.add_argument("--sha256", metavar="HEX", help="expected sha256 of the sdist (one SDIST)")
    parser.add_argument("-o", "--output", metavar="DIR", help="also copy each wheel into DIR")
    parser.add_argument(
        "--no-isolation",
        action="store_true",
        help="build in the current environment instead of a fresh one with the build requirements",
    )
    parser.add_argument(
        "-C",
        "--config-setting",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a PEP 517 config setting for the backend (repeatable; part of the cache key)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="build again and replace the cached wheel"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the cache only (an isolated build needs the package index, so a miss fails)",
    )
    parser.add_argument("--cache-dir", metavar="DIR", help="cache root (over SUREFETCH_CACHE_DIR)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per SDIST")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", action="count", default=0, help="show the backend's output and retries"
    )
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.set_defaults(handler=run_wheel)


def parse_config_settings(words: list[str]) -> dict[str, str | list[str]] | None:
    """``-C KEY=VALUE`` words as config settings; a repeated key collects a list.

    Example:
        >>> parse_config_settings(["a=1", "b=2", "a=3"])
        {'a': ['1', '3'], 'b': '2'}
        >>> parse_config_settings([]) is None
        True
    """
    settings: dict[str, str | list[str]] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise ConfigError(f"-C {word!r} is not valid: expected KEY=VALUE")
        if key in settings:
            held = settings[key]
            settings[key] = [*([held] if isinstance(held, str) else held), value]
        else:
            settings[key] = value
    return settings or None


def _copy_into(wheel: Path, directory: Path) -> Path:
    """Copy ``wheel`` into ``directory`` under its own name, replacing it whole."""
    target = directory / wheel.name
    temporary = directory / f".{wheel.name}.{os.getpid()}.tmp"
    shutil.copyfile(wheel, temporary)
    os.replace(temporary, target)
    return target


def run_wheel(args: argparse.Namespace) -> int:
    """Handle ``surefetch wheel``."""
    redactor = Redactor(args.sdists)
    verbosity = -1 if args.quiet else args.verbose
    configure_logging(verbosity=verbosity, redactor=redactor)

    def action() -> int:
        from surefetch._config import effective
        from surefetch._run_sync import run_sync
        from surefetch._wheels.pipeline import abuild_result

        effective()  # every setting present is checked, used here or not
        settings = parse_config_settings(args.config_setting)
        if args.sha256 is not None and len(args.sdists) != 1:
            raise ConfigError("--sha256 is not valid with more than one SDIST")
        output = None
        if args.output is not None:
            output = Path(args.output).expanduser()
            if not output.is_dir():
                raise ConfigError(f"-o {args.output!r} is not valid: expected a directory")
        for sdist in args.sdists:
            built = run_sync(
                abuild_result(
                    sdist,
                    sha256=args.sha256,
                    isolation=not args.no_isolation,
                    config_settings=settings,
                    cache=args.cache_dir,
                    rebuild=args.rebuild,
                    offline=True if args.offline else None,
                )
            )
            shown = built.path if output is None else _copy_into(built.path, output)
            if args.json:
                record = built.to_json()
                record["wheel"] = str(shown)
                print(json.dumps(record), flush=True)
            elif not args.quiet or output is None:
                print(shown, flush=True)
        return EXIT_OK

    code = run_reporting(action, redactor=redactor, verbose=args.verbose > 0)
    sys.stdout.flush()
    return code
