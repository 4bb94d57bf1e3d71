"""`surefetch fetch`: download a URL into the cache and print where it is."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from surefetch._cli.exit_codes import EXIT_OK
from surefetch._cli.output import ProgressBar, configure_logging, run_reporting
from surefetch._config import MAX_RETRIES, parse_whole_number
from surefetch._errors import ConfigError
from surefetch._url import Redactor


def add_parser(commands: Any) -> None:
    """Register ``surefetch fetch`` on ``commands`` (argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "fetch",
        help="download a URL into the cache (or find it there) and print its path",
        description="Download URL into the cache, or find it there, and print the cached path.",
    )
    parser.add_argument("url", metavar="URL")
    parser.add_argument("--sha256", metavar="HEX", help="expected sha256 of the file")
    parser.add_argument("-o", "--output", metavar="PATH", help="also write the file to PATH")
    parser.add_argument(
        "--mirror",
        metavar="URL",
        action="append",
        default=[],
        help="a mirror to try when URL fails (repeatable, tried in order)",
    )
    parser.add_argument(
        "--retries",
        metavar="N",
        help="retries per URL (over SUREFETCH_HTTP_RETRIES and config files; default 3)",
    )
    parser.add_argument("--cache-dir", metavar="DIR", help="cache root (over SUREFETCH_CACHE_DIR)")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use a cached copy: download again and replace it",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the cache only (also SUREFETCH_OFFLINE=1 or offline = true in a config file)",
    )
    parser.add_argument(
        "--allow-insecure-redirects",
        action="store_true",
        help="follow a redirect from https to plain http (also "
        "SUREFETCH_ALLOW_INSECURE_REDIRECTS=1 or allow_insecure_redirects = true in a config file)",
    )
    parser.add_argument(
        "--extract",
        metavar="DIR",
        help="extract the archive (safely, while it streams) and make DIR hold its tree; "
        "DIR must not exist or be empty",
    )
    parser.add_argument(
        "--strip-components",
        metavar="N",
        default="0",
        help="with --extract: drop N leading path components of every member",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", action="count", default=0, help="show retries and resumes"
    )
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.set_defaults(handler=run_fetch)


def _write_output(source: Path, target: str) -> Path:
    """Copy the cached file to ``target`` atomically; the cache entry stays untouched."""
    destination = Path(target).expanduser()
    if destination.is_dir():
        destination = destination / source.name
    directory = destination.parent
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{destination.name}.")
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination.resolve()


def _check_extract_target(target: str) -> Path:
    """The --extract directory, which must not exist or be empty (checked before fetching)."""
    if not target.strip():
        raise ConfigError("--extract '' is not valid: expected a directory")
    path = Path(target).expanduser()
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise ConfigError(
                f"--extract {target!r} is not valid: it exists and is not a directory"
            )
        if any(path.iterdir()):
            raise ConfigError(f"--extract {target!r} is not valid: the directory is not empty")
    return path


def run_fetch(args: argparse.Namespace) -> int:
    """Handle ``surefetch fetch``."""
    redactor = Redactor([args.url, *args.mirror])
    verbosity = -1 if args.quiet else args.verbose
    configure_logging(verbosity=verbosity, redactor=redactor)

    def action() -> int:
        from surefetch._config import effective
        from surefetch._fetch.async_api import afetch_result
        from surefetch._run_sync import run_sync

        effective()  # every setting present is checked, used here or not
        retries = None
        if args.retries is not None:
            retries = parse_whole_number("--retries", args.retries, minimum=0, maximum=MAX_RETRIES)
        if args.output is not None and not args.output.strip():
            raise ConfigError("-o '' is not valid: expected a path")
        strip = parse_whole_number(
            "--strip-components", args.strip_components, minimum=0, maximum=1000
        )
        extract_to = None if args.extract is None else _check_extract_target(args.extract)
        if extract_to is not None and args.output is not None:
            raise ConfigError("-o and --extract cannot be used together")
        show_bar = not args.quiet and not args.json and sys.stderr.isatty() and sys.stdout.isatty()
        bar = ProgressBar(redactor.scrub(args.url.rsplit("/", 1)[-1])) if show_bar else None
        try:
            result = run_sync(
                afetch_result(
                    args.url,
                    sha256=args.sha256,
                    mirrors=args.mirror,
                    cache=args.cache_dir,
                    retries=retries,
                    offline=True if args.offline else None,
                    allow_insecure_redirects=True if args.allow_insecure_redirects else None,
                    refresh=args.no_cache,
                    progress=bar,
                    strip_components=strip,
                    extract_to=extract_to,
                )
            )
        finally:
            if bar is not None:
                bar.close()
        shown = result.path
        if args.output is not None:
            shown = _write_output(result.path, args.output)
        if args.json:
            record = result.to_json()
            record["path"] = str(shown)
            record["cache_path"] = str(result.extra.get("cache_path", result.path))
            if extract_to is not None:
                record["extracted_to"] = str(shown)
            print(redactor.scrub(json.dumps(record)))
        elif not args.quiet or args.output is None:
            print(shown)
        return EXIT_OK

    return run_reporting(action, redactor=redactor, verbose=args.verbose > 0)
