"""Run a `ChaosServer` by hand: ``python -m surefetch.testing.chaos DIR``.

It serves DIR cleanly (no faults are scripted), prints its base URL on the first
line of standard output and stops by itself after ``--max-seconds`` (600 by
default), so that a forgotten server never outlives a debugging session.

Example:
    $ python -m surefetch.testing.chaos ./files --port 8080 --max-seconds 60
    http://127.0.0.1:8080/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from surefetch.testing._chaos import ChaosServer

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a directory until --max-seconds pass or Ctrl-C; return the exit status.

    Example:
        >>> main(["./files", "--max-seconds", "5"])  # doctest: +SKIP
        http://127.0.0.1:41923/
        0
    """
    parser = argparse.ArgumentParser(
        prog="python -m surefetch.testing.chaos",
        description="Serve a directory over HTTP/1.1 on 127.0.0.1 (surefetch chaos server).",
    )
    parser.add_argument("directory", help="directory whose files are served")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="stop by itself after this many seconds (default: 600)",
    )
    args = parser.parse_args(argv)
    server = ChaosServer(root=args.directory, port=args.port, max_seconds=args.max_seconds)
    server.start()
    print(server.url("/"), flush=True)
    try:
        # Short joins keep the main thread responsive to Ctrl-C.
        while not server.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
