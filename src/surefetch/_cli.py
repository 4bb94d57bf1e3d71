"""The command line: argument parsing, output and exit codes (kept thin).

Subcommands live in their own modules and are imported only when used, so
that ``surefetch --version`` and a cache hit stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from surefetch._version import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surefetch",
        description="Get files from the network into a local cache, reliably.",
    )
    parser.add_argument("--version", action="version", version=f"surefetch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from surefetch._cli_cache import add_cache_parser

    add_cache_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return EXIT_USAGE
    handler = args.handler
    result: int = handler(args)
    return result
