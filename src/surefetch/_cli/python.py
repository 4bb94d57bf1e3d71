"""`surefetch python install|list|find|uninstall|dir`: managed Python installs."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from surefetch._cli.exit_codes import EXIT_FAILED, EXIT_OK
from surefetch._cli.output import configure_logging, run_reporting
from surefetch._config import MAX_RETRIES, parse_whole_number
from surefetch._url import Redactor


def _install_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--install-dir",
        metavar="DIR",
        help="where Pythons are installed (over SUREFETCH_PYTHON_INSTALL_DIR)",
    )


def _catalog_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--downloads-json",
        metavar="PATH|URL",
        help="the catalog, in uv's downloads-JSON format (over SUREFETCH_PYTHON_DOWNLOADS_JSON)",
    )


def add_parser(commands: Any) -> None:
    """Register ``surefetch python`` on ``commands`` (argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "python",
        help="install standalone Python builds from a mirror, through resets",
        description="Manage Python installations (python-build-standalone builds).",
    )
    sub = parser.add_subparsers(dest="python_command", metavar="COMMAND", required=True)

    install = sub.add_parser("install", help="install Pythons matching the requests")
    install.add_argument("requests", metavar="REQUEST", nargs="+")
    install.add_argument(
        "--mirror",
        metavar="URL",
        action="append",
        default=[],
        help="replaces the release-download prefix of each URL (repeatable, tried in order, "
        "then the original; over SUREFETCH_PYTHON_INSTALL_MIRROR)",
    )
    _catalog_flag(install)
    _install_dir_flag(install)
    install.add_argument("--bin-dir", metavar="DIR", help="also link python3.X into DIR")
    install.add_argument("--reinstall", action="store_true", help="replace an installation")
    install.add_argument("--offline", action="store_true", help="use cached archives only")
    install.add_argument("--cache-dir", metavar="DIR", help="cache root (over SUREFETCH_CACHE_DIR)")
    install.add_argument("--retries", metavar="N", help="retries per URL (default 3)")
    install.add_argument("--json", action="store_true", help="print one JSON object")
    loudness = install.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="count", default=0, help="show retries")
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    install.set_defaults(handler=run_install)

    listing = sub.add_parser("list", help="installed Pythons, then downloads available")
    listing.add_argument("request", metavar="REQUEST", nargs="?")
    listing.add_argument("--only-installed", action="store_true")
    _catalog_flag(listing)
    _install_dir_flag(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(handler=run_list)

    finding = sub.add_parser("find", help="print the executable of an installed Python")
    finding.add_argument("request", metavar="REQUEST")
    _install_dir_flag(finding)
    finding.set_defaults(handler=run_find)

    removing = sub.add_parser("uninstall", help="remove installed Pythons")
    removing.add_argument("requests", metavar="REQUEST", nargs="*")
    removing.add_argument("--all", action="store_true", help="remove every installation")
    _install_dir_flag(removing)
    removing.add_argument("--cache-dir", metavar="DIR", help="cache root (its locks are used)")
    removing.set_defaults(handler=run_uninstall)

    where = sub.add_parser("dir", help="print the install directory")
    _install_dir_flag(where)
    where.set_defaults(handler=run_dir)


def _root(args: argparse.Namespace) -> Path:
    from surefetch._config import PYTHON_INSTALL_DIR, resolve

    return Path(resolve(PYTHON_INSTALL_DIR, flag_value=args.install_dir))


def _link_into(bin_dir: str, installation: Any) -> Path:
    """Link ``python3.X`` (``python3.Xt`` for free-threaded) in ``bin_dir`` to the interpreter."""
    minor = ".".join(installation.version.split(".")[:2])
    suffix = "t" if installation.variant == "freethreaded" else ""
    directory = Path(bin_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / f"python{minor}{suffix}"
    temporary = directory / f".{link.name}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(installation.executable, temporary)
    os.replace(temporary, link)
    return link


def run_install(args: argparse.Namespace) -> int:
    """Handle ``surefetch python install``."""
    redactor = Redactor(args.mirror + ([args.downloads_json] if args.downloads_json else []))
    configure_logging(verbosity=-1 if args.quiet else args.verbose, redactor=redactor)

    def action() -> int:
        import asyncio

        from surefetch._config import effective
        from surefetch._python.install import ainstall
        from surefetch._run_sync import run_sync

        effective()
        retries = None
        if args.retries is not None:
            retries = parse_whole_number("--retries", args.retries, minimum=0, maximum=MAX_RETRIES)
        root = _root(args)
        started = time.monotonic()
        bars = None
        if not args.quiet and not args.json and sys.stderr.isatty():
            from surefetch._cli.progress import ProgressBars

            # One line per version downloading, and a total when there are several.
            bars = ProgressBars()
        progress = [
            None if bars is None else bars.row(f"Python {request}") for request in args.requests
        ]

        async def all_of() -> list[Any]:
            return await asyncio.gather(
                *(
                    ainstall(
                        request,
                        install_dir=root,
                        mirrors=args.mirror,
                        downloads_json=args.downloads_json,
                        reinstall=args.reinstall,
                        cache=args.cache_dir,
                        retries=retries,
                        offline=True if args.offline else None,
                        progress=on_progress,
                    )
                    for request, on_progress in zip(args.requests, progress, strict=True)
                ),
                return_exceptions=True,
            )

        try:
            outcomes = run_sync(all_of())
        finally:
            if bars is not None:
                bars.close()
        elapsed = time.monotonic() - started
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        done = [o for o in outcomes if not isinstance(o, BaseException)]
        for installation in done:
            if args.bin_dir:
                _link_into(args.bin_dir, installation)
        if args.json:
            fields = (
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
            )
            records = [{f: i.to_json()[f] for f in fields} for i in done]
            for record in records:
                record["url"] = redactor.scrub(str(record["url"]))
            print(json.dumps({"installations": records, "elapsed_s": round(elapsed, 3)}))
        elif not args.quiet:
            fresh = [i for i in done if not i.already_installed]
            for installation in done:
                if installation.already_installed:
                    print(
                        f"Python {installation.version} is already installed ({installation.key})",
                        file=sys.stderr,
                    )
            if fresh:
                versions = ", ".join(i.version for i in fresh)
                noun = "Python" if len(fresh) == 1 else "Pythons"
                print(f"Installed {noun} {versions} in {elapsed:.1f}s", file=sys.stderr)
                for installation in fresh:
                    print(f" + {installation.key}", file=sys.stderr)
        for failure in failures:
            if not isinstance(failure, Exception):
                raise failure
        if failures:
            if len(failures) > 1:
                from surefetch._cli.output import exit_code_for, format_error

                for failure in failures[:-1]:
                    print(format_error(failure, redactor=redactor), file=sys.stderr)
                    exit_code_for(failure)
            raise failures[-1]
        return EXIT_OK

    return run_reporting(action, redactor=redactor, verbose=args.verbose > 0)


def run_list(args: argparse.Namespace) -> int:
    """Handle ``surefetch python list``."""
    redactor = Redactor([args.downloads_json] if args.downloads_json else [])
    configure_logging(verbosity=0, redactor=redactor)

    def action() -> int:
        from surefetch._python.layout import installed
        from surefetch._python.requests import parse_request

        root = _root(args)
        parsed = parse_request(args.request) if args.request else None
        found = [
            i
            for i in installed(install_dir=root)
            if parsed is None
            or parsed.matches(
                implementation=i.implementation,
                version=i.version,
                variant=i.variant,
                platform=i.key.split("-", 2)[2],
            )
        ]
        builds: list[Any] = []
        if not args.only_installed:
            from surefetch._python.install import available

            have = {i.key for i in found}
            builds = [
                b
                for b in available(args.request, downloads_json=args.downloads_json)
                if b.key not in have
            ]
        if args.json:
            print(
                json.dumps(
                    {
                        "installed": [
                            {
                                "key": i.key,
                                "version": i.version,
                                "path": str(i.path),
                                "executable": str(i.executable),
                            }
                            for i in found
                        ],
                        "available": [
                            {
                                "key": b.key,
                                "version": b.version,
                                "url": redactor.scrub(b.url),
                                "sha256": b.sha256,
                            }
                            for b in builds
                        ],
                    }
                )
            )
            return EXIT_OK
        width = max([len(i.key) for i in found] + [len(b.key) for b in builds] + [0])
        for installation in found:
            print(f"{installation.key:<{width}}    {installation.executable}")
        for build in builds:
            print(f"{build.key:<{width}}    <download available>")
        return EXIT_OK

    return run_reporting(action, redactor=redactor, verbose=False)


def run_find(args: argparse.Namespace) -> int:
    """Handle ``surefetch python find``."""
    redactor = Redactor()

    def action() -> int:
        from surefetch._python.layout import find

        root = _root(args)
        installation = find(args.request, install_dir=root)
        if installation is None:
            print(f"error: No installed Python matches {args.request!r} in {root}", file=sys.stderr)
            return EXIT_FAILED
        print(installation.executable)
        return EXIT_OK

    return run_reporting(action, redactor=redactor, verbose=False)


def run_uninstall(args: argparse.Namespace) -> int:
    """Handle ``surefetch python uninstall``."""
    redactor = Redactor()

    def action() -> int:
        from surefetch._errors import ConfigError
        from surefetch._python.install import uninstall

        if not args.requests and not args.all:
            raise ConfigError("python uninstall needs a REQUEST or --all")
        root = _root(args)
        removed = []
        if args.all:
            removed = uninstall(install_dir=root, all=True, cache=args.cache_dir)
        for request in args.requests:
            removed += uninstall(request, install_dir=root, cache=args.cache_dir)
        if not removed:
            print(
                "error: No installed Python matches " + ", ".join(map(repr, args.requests))
                if args.requests
                else "Nothing to uninstall",
                file=sys.stderr,
            )
            return EXIT_FAILED if args.requests else EXIT_OK
        print(
            f"Uninstalled {len(removed)} Python{'s' if len(removed) > 1 else ''}", file=sys.stderr
        )
        for installation in removed:
            print(f" - {installation.key}", file=sys.stderr)
        return EXIT_OK

    return run_reporting(action, redactor=redactor, verbose=False)


def run_dir(args: argparse.Namespace) -> int:
    """Handle ``surefetch python dir``."""
    return run_reporting(lambda: print(_root(args)) or EXIT_OK, redactor=Redactor(), verbose=False)
