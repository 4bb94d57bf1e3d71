"""The command line: argument parsing, output and exit codes (kept thin).

Start-up time is part of the interface: ``surefetch --version`` and a cache
hit answer before argparse, asyncio or the HTTP stack is imported. Every
other command goes through argparse. Each command lives in a module of its
own (`COMMANDS`), which registers it with ``add_parser(commands)`` and is
imported only when that command runs; top-level help, a missing command or
an unknown one builds the parser of every command, so that the help and the
error list them all.
"""

from __future__ import annotations

import sys

from surefetch._cli.exit_codes import EXIT_USAGE
from surefetch._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Command name -> the module that registers it (`add_parser`) and runs it,
# in the order the help lists them.
COMMANDS = {
    "fetch": "surefetch._cli.fetch",
    "wheel": "surefetch._cli.wheel",
    "cache": "surefetch._cli.cache",
    "python": "surefetch._cli.python",
    "demo": "surefetch._cli.demo",
    "config": "surefetch._cli.config",
}


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command`` alone, or with every command (None or an unknown name).

    Example:
        >>> "demo" in _parser().format_help()
        True
        >>> "demo" in _parser("cache").format_help()
        False
    """
    import argparse
    import importlib

    parser = argparse.ArgumentParser(
        prog="surefetch",
        description="Get files from the network into a local cache, reliably.",
    )
    parser.add_argument("--version", action="version", version=f"surefetch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [command] if command in COMMANDS else list(COMMANDS)
    for name in names:
        importlib.import_module(COMMANDS[name]).add_parser(commands)
    return parser


def _parse(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    """``parser.parse_args(words)``, with every credential in ``words`` scrubbed from its messages.

    argparse quotes what it does not understand ("unrecognized arguments:
    https://user:password@..."), on standard error; so whatever it writes
    there goes through a `Redactor` that knows every word of the command line.
    """
    import contextlib
    import io

    from surefetch._url import Redactor

    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            args, unknown = parser.parse_known_args(words)
            if unknown:
                # Said by the command's own parser, so that its usage is shown.
                _command_parser(parser, args.command).error(
                    f"unrecognized arguments: {' '.join(unknown)}"
                )
            return args
    finally:
        if said.getvalue():
            sys.stderr.write(Redactor(words).scrub(said.getvalue()))


def _command_parser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser:
    """The parser of ``command`` within ``parser``, or ``parser`` itself."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser


def _run(words: list[str]) -> int:
    """Parse ``words`` and run the command, leaving the logging set-up as it was."""
    from surefetch._cli.interrupts import sigterm_as_interrupt
    from surefetch._cli.output import logging_left_as_found

    # The command is the first word: the only options before it are -h and
    # --version, and with either, the full parser answers.
    parser = _parser(words[0] if words else None)
    with logging_left_as_found(), sigterm_as_interrupt():
        args = _parse(parser, words)
        if args.command is None:
            parser.print_help(sys.stdout)
            return EXIT_USAGE
        return int(args.handler(args))


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
        elif words[:1] == ["wheel"]:
            from surefetch._cli.wheel_hit import answer_from_cache as answer_wheel

            code = answer_wheel(words[1:])
            if code is not None:
                return code
        return _run(words)
    except KeyboardInterrupt:
        from surefetch._cli.interrupts import report_interrupted

        return report_interrupted()
