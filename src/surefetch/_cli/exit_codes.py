"""The command line's exit codes, in one place.

A module of its own, with no imports, because `surefetch._cli.main` needs
them on its fast paths (``--version``, a cache hit), before anything else of
the command line is imported.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # an expected failure: a download, a corrupt entry, a held lock
EXIT_USAGE = 2  # a bad flag, setting or URL, or no command
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_TERMINATED = 143  # SIGTERM, handled as Ctrl-C is, with the shell's code for it

# What an interrupted command prints on stderr, whatever it was doing.
INTERRUPTED_MESSAGE = "error: interrupted"
