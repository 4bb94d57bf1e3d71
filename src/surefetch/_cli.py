"""The command line: argument parsing, output and exit codes (kept thin).

Subcommands live in their own modules and are imported only when used, so
that ``surefetch --version`` and a cache hit stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from surefetch._cli_output import EXIT_INTERRUPTED, EXIT_USAGE
from surefetch._version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surefetch",
        description="Get files from the network into a local cache, reliably.",
    )
    parser.add_argument("--version", action="version", version=f"surefetch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from surefetch._cli_cache import add_cache_parser
    from surefetch._cli_demo import add_demo_parser
    from surefetch._cli_fetch import add_fetch_parser

    add_fetch_parser(commands)
    add_cache_parser(commands)
    add_demo_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return EXIT_USAGE
    handler = args.handler
    try:
        result: int = handler(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result
