"""The end of every command's ``--help``: an example, the exit codes, the variables read.

One function, so that every command (and every new one) says these three
things the same way; argparse prints the text as written
(`argparse.RawDescriptionHelpFormatter`).
"""

from __future__ import annotations

from collections.abc import Sequence

from surefetch._cli.exit_codes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
)

# What the transports read besides the settings (proxies, netrc, OpenSSL).
NETWORK_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "NETRC", "SSL_CERT_FILE")


def setting_variables() -> list[str]:
    """The variable of every setting in the registry (`surefetch._config.SETTINGS`).

    Example:
        >>> "SUREFETCH_CACHE_DIR" in setting_variables()
        True
    """
    from surefetch._config import SETTINGS

    return [setting.env for setting in SETTINGS]


def epilog(*, examples: Sequence[str], variables: Sequence[str]) -> str:
    """The text after a command's options in ``--help``.

    Example:
        >>> print(epilog(examples=["surefetch demo"], variables=["SUREFETCH_CACHE_DIR"]))
        ... # doctest: +NORMALIZE_WHITESPACE
        example:
          surefetch demo
        <BLANKLINE>
        exit codes:
          0    success
          1    failed (a download, a corrupt entry, a held lock)
          2    usage: a bad flag, setting or URL
          130  interrupted (Ctrl-C)
          143  terminated (SIGTERM)
        <BLANKLINE>
        environment variables:
          SUREFETCH_CACHE_DIR
        <BLANKLINE>
        surefetch config shows every setting and where its value came from.
    """
    lines = ["examples:" if len(examples) > 1 else "example:"]
    lines += [f"  {example}" for example in examples]
    lines += [
        "",
        "exit codes:",
        f"  {EXIT_OK:<4} success",
        f"  {EXIT_FAILED:<4} failed (a download, a corrupt entry, a held lock)",
        f"  {EXIT_USAGE:<4} usage: a bad flag, setting or URL",
        f"  {EXIT_INTERRUPTED:<4} interrupted (Ctrl-C)",
        f"  {EXIT_TERMINATED:<4} terminated (SIGTERM)",
        "",
        "environment variables:",
    ]
    lines += [f"  {name}" for name in variables]
    lines += ["", "surefetch config shows every setting and where its value came from."]
    return "\n".join(lines)
