"""`surefetch cache ...`: the cache maintenance commands (placeholder, being built)."""

from __future__ import annotations

import argparse
from typing import Any


def add_cache_parser(commands: Any) -> None:
    """Register ``surefetch cache`` and its subcommands on ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "cache", help="inspect and maintain the cache"
    )
    parser.set_defaults(handler=lambda args: 2)
