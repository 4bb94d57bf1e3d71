"""`surefetch config`: every setting's effective value and where it came from.

The command accepts the flags of the settings that have one (``--cache-dir``,
``--retries``, ``--offline``), so ``surefetch config --retries 5`` shows what
``surefetch fetch --retries 5`` would use. ``--json`` prints a list of
objects with the keys ``name``, ``value``, ``source``, ``env``, ``flag``,
``default``, ``allowed`` and ``help``. An invalid setting anywhere (flag,
environment, config file) prints ``error: <one line>`` and exits 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from surefetch._cli.exit_codes import EXIT_OK
from surefetch._cli.help import epilog, setting_variables
from surefetch._cli.output import run_reporting
from surefetch._config import SETTINGS, Setting
from surefetch._url import Redactor


def _dest(setting: Setting[Any]) -> str:
    # Prefixed, so that no setting can collide with argparse's own
    # attributes (command, handler) on the shared namespace.
    return f"setting_{setting.name}"


def add_parser(commands: Any) -> None:
    """Register ``surefetch config`` on ``commands`` (argparse subparsers).

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="surefetch")
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["config", "--retries", "5"]).setting_http_retries
        '5'
    """
    parser: argparse.ArgumentParser = commands.add_parser(
        "config",
        help="show every setting, its value and where it came from",
        description=(
            "Show every setting's effective value and its source: "
            "flag > environment > config file > default."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(
            examples=["surefetch config", "surefetch config --retries 5"],
            variables=setting_variables(),
        ),
    )
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        text = f"{setting.help} (over ${setting.env})"
        if isinstance(setting.default, bool):
            # None when absent, so that "not given" falls through to the environment.
            parser.add_argument(
                setting.flag, dest=_dest(setting), action="store_true", default=None, help=text
            )
        else:
            parser.add_argument(
                setting.flag,
                dest=_dest(setting),
                metavar="DIR" if setting.is_path else "N",
                default=None,
                help=text,
            )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object each")
    parser.set_defaults(handler=run_config)


def _display(value: object) -> str:
    """A value as a person reads it: true/false, none, 30 rather than 30.0."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # A path from the environment may hold undecodable bytes (as surrogates),
    # which print() could not encode: show them escaped rather than crash.
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def run_config(args: argparse.Namespace) -> int:
    """Handle ``surefetch config``: print the table (or ``--json``); 2 for an invalid setting.

    Example:
        >>> import argparse
        >>> run_config(argparse.Namespace(json=False))  # doctest: +SKIP
        setting          value                   source
        ...
        0
    """
    return run_reporting(lambda: _show(args), redactor=Redactor(), verbose=False)


def _show(args: argparse.Namespace) -> int:
    from surefetch import _config

    flags = {s.name: getattr(args, _dest(s), None) for s in SETTINGS if s.flag is not None}
    rows = _config.effective(flags=flags)
    files = _config.load_config_file().paths
    if getattr(args, "json", False):
        records = [
            {
                "name": setting.name,
                "value": value,
                "source": source,
                "env": setting.env,
                "flag": setting.flag,
                "default": setting.default_value(),
                "allowed": setting.allowed,
                "help": setting.help,
            }
            for setting, value, source in rows
        ]
        print(json.dumps(records, indent=2))
        return EXIT_OK
    table = [("setting", "value", "source")]
    table += [(setting.name, _display(value), source) for setting, value, source in rows]
    name_width = max(len(row[0]) for row in table)
    value_width = max(len(row[1]) for row in table)
    for name, value, source in table:
        print(f"{name:<{name_width}}  {value:<{value_width}}  {source}".rstrip())
    if files:
        print(f"\nConfig files: {', '.join(files)}")
    else:
        print(f"\nNo config file; looked for: {', '.join(_config.config_file_places())}")
    return EXIT_OK
