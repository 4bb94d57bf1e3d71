"""The user cache, config and data directories of surefetch.

platformdirs is the authority, but importing it costs more than the rest of
a command-line cache hit, so on Linux and the BSDs the XDG rules are applied
directly (a test checks that the two agree); elsewhere platformdirs answers.
"""

from __future__ import annotations

import os
import sys


def user_dir(kind: str) -> str:
    """The user ``"cache"``, ``"config"`` or ``"data"`` directory, as platformdirs says.

    On Linux and the BSDs it follows the XDG rules directly: importing
    platformdirs costs more than the rest of a cache hit. A test checks that
    the two agree.

    Example:
        >>> user_dir("cache").endswith("surefetch")
        True
    """
    if os.name == "posix" and sys.platform != "darwin":
        variable, fallback = {
            "cache": ("XDG_CACHE_HOME", "~/.cache"),
            "config": ("XDG_CONFIG_HOME", "~/.config"),
            "data": ("XDG_DATA_HOME", "~/.local/share"),
        }[kind]
        base = os.environ.get(variable, "").strip() or os.path.expanduser(fallback)
        return os.path.join(base, "surefetch")
    import platformdirs

    if kind == "cache":
        return platformdirs.user_cache_dir("surefetch", appauthor=False)
    if kind == "data":
        return platformdirs.user_data_dir("surefetch", appauthor=False)
    return platformdirs.user_config_dir("surefetch", appauthor=False)
