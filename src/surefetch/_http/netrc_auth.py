"""Credentials from the user's netrc file, for a request whose URL carries none.

Both transports send them, as curl ``--netrc-optional``, requests and pip
do: the file named by ``NETRC``, else ``~/.netrc`` (``~/_netrc`` on
Windows), looked up for the host of each request, so a redirect to another
host gets that host's credentials or none (`surefetch._http.redirects` has
already dropped the first host's). The file is parsed once and again only
when it changes; one that cannot be parsed is reported once and ignored, as
aiohttp and requests ignore it.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from surefetch._http.headers import basic_authorization
from surefetch._log import logger

# (path, mtime_ns, size) -> {host: Authorization value or None}, for one file.
_parsed: tuple[tuple[str, int, int], dict[str, str | None]] | None = None
# Files already reported as unreadable: said once per process, not per request.
_reported: set[str] = set()


def netrc_file() -> str:
    """Where the netrc file is looked for: ``NETRC``, else the home directory's.

    Example:
        >>> netrc_file().endswith(("netrc", os.environ.get("NETRC", "netrc")))
        True
    """
    named = os.environ.get("NETRC")
    if named:
        return os.path.expanduser(named)
    return os.path.join(os.path.expanduser("~"), "_netrc" if os.name == "nt" else ".netrc")


def netrc_authorization(host: str) -> str | None:
    """The ``Authorization`` value the netrc file gives ``host`` (or its ``default``), or None.

    Example:
        >>> import os, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "netrc"
        >>> _ = path.write_text("machine files.example login alice password secret\\n")
        >>> os.environ["NETRC"] = str(path)
        >>> netrc_authorization("files.example"), netrc_authorization("other.example")
        ('Basic YWxpY2U6c2VjcmV0', None)
        >>> del os.environ["NETRC"]
    """
    global _parsed
    path = netrc_file()
    try:
        status = os.stat(path)
    except OSError:
        return None  # no file: the common case costs one stat
    key = (path, status.st_mtime_ns, status.st_size)
    parsed = _parsed
    if parsed is None or parsed[0] != key:
        parsed = _parsed = (key, {})
    found = parsed[1]
    if host not in found:
        found[host] = _look_up(path, host)
    return found[host]


def with_netrc_credentials(url: str, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the netrc file's credentials for ``url``'s host, unless they carry some.

    Example:
        >>> with_netrc_credentials("https://h.example/a", {"Authorization": "Basic eDp5"})
        {'Authorization': 'Basic eDp5'}
    """
    if "Authorization" in headers:
        return headers
    authorization = netrc_authorization(urlsplit(url).hostname or "")
    if authorization is None:
        return headers
    return {**headers, "Authorization": authorization}


def _look_up(path: str, host: str) -> str | None:
    import netrc

    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError) as error:
        if path not in _reported:
            _reported.add(path)
            logger.warning("Ignoring the netrc file %s, which cannot be read: %s", path, error)
        return None
    if entry is None:
        return None
    login, account, password = entry
    # As aiohttp and requests take it: the login, else the account.
    username = login if login or account is None else account
    return basic_authorization(username, password or "")
