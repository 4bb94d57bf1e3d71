"""`surefetch demo`: see what surefetch does, with nothing to set up."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from surefetch._cli.output import run_reporting
from surefetch._url import Redactor


def add_demo_parser(commands: Any) -> None:
    """Register ``surefetch demo`` on ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="fetch and extract a sample archive from a local server that misbehaves",
        description=(
            "Serve a generated sample archive from a local chaos server and fetch it "
            "through a connection reset, a 503 and a 429 with Retry-After, then again "
            "from the cache. Needs no network beyond loopback."
        ),
    )
    parser.add_argument(
        "--faults",
        choices=("default", "none"),
        default="default",
        help="'none' runs the demo without faults",
    )
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="keep the demo's cache here (default: a temporary one)"
    )
    parser.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """Handle ``surefetch demo``."""
    from surefetch._cli.demo_run import run_demo

    cache_dir = None if args.cache_dir is None else Path(args.cache_dir)
    return run_reporting(
        lambda: run_demo(faults=args.faults == "default", cache_dir=cache_dir, out=sys.stdout),
        redactor=Redactor(),
        verbose=False,
    )
