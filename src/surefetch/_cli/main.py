"""The command line: argument parsing, output and exit codes (kept thin).

Start-up time is part of the interface: ``surefetch --version`` and a cache
hit answer before argparse, asyncio or the HTTP stack is imported. Every
other command goes through argparse, and subcommands live in their own
modules, imported when the parser is built.
"""

from __future__ import annotations

import sys

from surefetch._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    import argparse

    from surefetch._cli.cache import add_cache_parser
    from surefetch._cli.config import add_config_parser
    from surefetch._cli.demo import add_demo_parser
    from surefetch._cli.fetch import add_fetch_parser

    parser = argparse.ArgumentParser(
        prog="surefetch",
        description="Get files from the network into a local cache, reliably.",
    )
    parser.add_argument("--version", action="version", version=f"surefetch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_fetch_parser(commands)
    add_cache_parser(commands)
    add_demo_parser(commands)
    add_config_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Example:
        >>> main(["--version"])
        surefetch 0.1.0
        0
    """
    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["--version"]:
        print(f"surefetch {__version__}")
        return 0
    try:
        if words[:1] == ["fetch"]:
            from surefetch._cli.hit import answer_from_cache

            code = answer_from_cache(words[1:])
            if code is not None:
                return code
        parser = _parser()
        args = parser.parse_args(words)
        if args.command is None:
            parser.print_help(sys.stdout)
            return EXIT_USAGE
        result = int(args.handler(args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result
