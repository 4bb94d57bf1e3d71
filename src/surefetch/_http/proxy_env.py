"""Whether the environment may name a proxy: the cheap check before the full lookup.

Both transports take proxies from the environment as
`urllib.request.getproxies` and ``proxy_bypass`` read it. On Linux and the
BSDs those read only ``*_proxy`` variables, so when none is set, which is
the common case, neither urllib (tens of milliseconds to import) nor a
lookup per request is needed. macOS and Windows also read the system's own
settings, so there the lookup always runs.
"""

from __future__ import annotations

import os
import sys


def environment_may_name_a_proxy() -> bool:
    """False only when no proxy can apply: no ``*_proxy`` variable, on a platform without others.

    Example:
        >>> import os
        >>> environment_may_name_a_proxy() or not any(
        ...     name.lower().endswith("_proxy") for name in os.environ)
        True
    """
    if sys.platform in ("darwin", "win32"):
        return True
    # Asked before every request: the names are scanned at C speed, as bytes
    # (a name with a newline in it can only make this say yes, and then the
    # full lookup decides).
    if os.supports_bytes_environ:
        return b"_proxy\n" in (b"\n".join(os.environb) + b"\n").lower()
    return any(name.lower().endswith("_proxy") for name in os.environ)
