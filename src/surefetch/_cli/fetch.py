"""`surefetch fetch`: download a URL into the cache and print where it is."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from surefetch._cli.exit_codes import EXIT_OK
from surefetch._cli.help import NETWORK_VARIABLES, epilog, setting_variables
from surefetch._cli.output import configure_logging, run_reporting
from surefetch._config import MAX_AGE, MAX_RETRIES, parse_whole_number
from surefetch._errors import ConfigError
from surefetch._log import logger
from surefetch._url import Redactor, filename_from_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(commands: Any) -> None:
    """Register ``surefetch fetch`` on ``commands`` (argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "fetch",
        help="download a URL into the cache (or find it there) and print its path",
        description="Download URL into the cache, or find it there, and print the cached path.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(
            examples=[
                "surefetch fetch https://example.org/data/file.tar.gz --sha256 HEX",
                "surefetch fetch https://example.org/pkg.tar.gz --extract pkg --strip-components 1",
                "P=$(surefetch fetch https://example.org/data/latest.json -q)",
            ],
            variables=[*setting_variables(), *NETWORK_VARIABLES],
        ),
    )
    parser.add_argument("url", metavar="URL")
    parser.add_argument("--sha256", metavar="HEX", help="expected sha256 of the file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="also write the file to PATH (into it if it is a directory)",
    )
    parser.add_argument(
        "--create-dirs",
        action="store_true",
        help="create the missing parent directories of -o PATH or --extract DIR",
    )
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
        "--max-age",
        metavar="SECONDS",
        help="a copy cached by URL is fresh for SECONDS after the server last sent or "
        "confirmed it, whatever the server says (0: check every time; over "
        "SUREFETCH_MAX_AGE and max_age in a config file)",
    )
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
        help="with --extract: drop N leading path components of every member",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", action="count", default=0, help="show retries and resumes"
    )
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.set_defaults(handler=run_fetch)


def _missing_parent(directory: Path, *, flag: str, target: str, create_dirs: bool) -> None:
    """Refuse a ``directory`` to write into that is not one, or is missing without --create-dirs.

    Checked before fetching, so that a typo in a path fails fast and makes no tree.
    """
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{flag} {target!r} is not valid: {existing} is not a directory")
    if existing != directory and not create_dirs:
        raise ConfigError(
            f"{flag} {target!r} is not valid: the directory {directory} does not exist "
            "(--create-dirs creates it)"
        )


def _check_output_target(target: str, *, create_dirs: bool) -> None:
    """Check the -o target before fetching: its directory must exist (or --create-dirs)."""
    if not target.strip():
        raise ConfigError("-o '' is not valid: expected a path")
    path = Path(target).expanduser()
    if path.is_dir():
        return  # the file goes inside
    # A symbolic link is followed, as curl follows it: what counts is where it points.
    real = Path(os.path.realpath(path))
    _missing_parent(real.parent, flag="-o", target=target, create_dirs=create_dirs)


def _write_output(source: Path, target: str, *, create_dirs: bool) -> Path:
    """Copy the cached file to ``target``, never destroying what is not ours; the cache stays.

    Nothing or a regular file there is replaced atomically (a temporary file
    in the same directory, renamed over it), so no reader sees half a file.
    A symbolic link is followed, and its target treated so, as curl follows
    it. Anything else (a device such as /dev/null, a FIFO) is not ours to
    replace: it is opened and written through, as ``curl -o`` does. Returns
    the path as named (absolute), which is what is printed.
    """
    destination = Path(target).expanduser()
    if destination.is_dir():
        destination = destination / source.name
    real = Path(os.path.realpath(destination))
    try:
        found: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        found = None
    if found is None or stat.S_ISREG(found.st_mode):
        if create_dirs:
            real.parent.mkdir(parents=True, exist_ok=True)
        _replace(source, real, mode=None if found is None else stat.S_IMODE(found.st_mode))
    else:
        import shutil

        with open(source, "rb") as data, open(real, "wb") as out:
            shutil.copyfileobj(data, out, _CHUNK)
    return Path(os.path.abspath(destination))


_CHUNK = 1 << 20


def _replace(source: Path, destination: Path, *, mode: int | None) -> None:
    """Put a copy of ``source`` at ``destination`` by one rename.

    The temporary file is created with mode 0o666, which the umask trims as
    it would trim any new file; a replaced file keeps its own mode, as curl
    and cp keep it.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = destination.parent / f".{destination.name[:200]}.{os.urandom(4).hex()}.part"
        try:
            handle = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"No free temporary name next to {destination}")
    import shutil

    try:
        with open(handle, "wb") as out, open(source, "rb") as data:
            shutil.copyfileobj(data, out, _CHUNK)
            out.flush()
            # Durable before it replaces anything: a crash must not leave an empty file.
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _check_extract_target(target: str, *, create_dirs: bool) -> Path:
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
    else:
        parent = Path(os.path.abspath(path)).parent
        _missing_parent(parent, flag="--extract", target=target, create_dirs=create_dirs)
    return path


def run_fetch(args: argparse.Namespace) -> int:
    """Handle ``surefetch fetch``."""
    redactor = Redactor([args.url, *args.mirror])
    verbosity = -1 if args.quiet else args.verbose
    configure_logging(verbosity=verbosity, redactor=redactor)

    def action() -> int:
        from surefetch._config import effective
        from surefetch._fetch.options import FetchArgs
        from surefetch._fetch.sync_api import fetch_result

        effective()  # every setting present is checked, used here or not
        max_age = None
        if args.max_age is not None:
            max_age = MAX_AGE.parse(args.max_age, label="--max-age")
        retries = None
        if args.retries is not None:
            retries = parse_whole_number("--retries", args.retries, minimum=0, maximum=MAX_RETRIES)
        if args.output is not None:
            _check_output_target(args.output, create_dirs=args.create_dirs)
        strip = 0
        if args.strip_components is not None:
            if args.extract is None:
                raise ConfigError(
                    "--strip-components needs --extract DIR: there is no tree to strip"
                )
            strip = parse_whole_number(
                "--strip-components", args.strip_components, minimum=0, maximum=1000
            )
        extract_to = None
        if args.extract is not None:
            extract_to = _check_extract_target(args.extract, create_dirs=args.create_dirs)
        if extract_to is not None and args.output is not None:
            raise ConfigError("-o and --extract cannot be used together")
        show_bar = not args.quiet and not args.json and sys.stderr.isatty()
        # The file's name alone: no query (a secret of any length), nothing rich reads as markup.
        bar = None
        if show_bar:  # rich, and the bar's module, only for a terminal
            from surefetch._cli.progress import ProgressBar

            bar = ProgressBar(filename_from_url(args.url))
        try:
            # A plain file goes over the transport the settings pick (http.client by
            # default: no asyncio, no aiohttp to import); --extract over aiohttp.
            result = fetch_result(
                FetchArgs(
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
                    max_age=max_age,
                )
            )
        finally:
            if bar is not None:
                bar.close()
        logger.debug("Took %.3fs in all", result.elapsed_s)
        shown = result.path
        if args.output is not None:
            shown = _write_output(result.path, args.output, create_dirs=args.create_dirs)
        if args.json:
            import json

            record = result.to_json()
            record["path"] = str(shown)
            record["cache_path"] = str(result.extra.get("cache_path", result.path))
            if extract_to is not None:
                record["extracted_to"] = str(shown)
            # The URL alone is scrubbed (again): the paths and the hash are real
            # values, which a secret that happens to occur in them must not spoil.
            record["url"] = redactor.scrub(record["url"])
            print(json.dumps(record))
        elif not args.quiet or args.output is None:
            print(shown)
        return EXIT_OK

    return run_reporting(action, redactor=redactor, verbose=args.verbose > 0)
