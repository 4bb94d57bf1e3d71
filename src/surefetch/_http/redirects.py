"""Following redirects: where a ``Location`` leads and whether to go there. No I/O.

Redirects are followed here rather than inside the HTTP client, so that the
decision is made before any request goes to the new place: an ``https`` URL
that redirects to ``http`` would fetch in plaintext what was asked for over
TLS, and cache it under the https URL's key, so it is refused unless the
caller allows it. Credentials go only to the origin they were given for.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from surefetch._errors import DownloadError
from surefetch._log import logger
from surefetch._url import redact_url

MAX_REDIRECTS = 10
"""Redirects followed for one request, as browsers, curl and aiohttp allow."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_DEFAULT_PORTS = {"http": 80, "https": 443}


class RedirectError(DownloadError):
    """A redirect that is not followed: a loop, or a location that is no http(s) URL.

    Never retried: the server would send the same redirect again.

    Example:
        >>> str(RedirectError("Too many redirects"))
        'Too many redirects'
    """

    surefetch_transient = False


class InsecureRedirectError(RedirectError):
    """An ``https`` URL redirected to plain ``http``, which was not allowed.

    Both URLs in the message are redacted.

    Example:
        >>> error = InsecureRedirectError(source="https://h/a", target="http://h/a")
        >>> str(error).split(":")[0]
        'Refusing to follow the redirect from https'
    """

    def __init__(self, *, source: str, target: str) -> None:
        self.source = source
        self.target = target
        super().__init__(
            f"Refusing to follow the redirect from {source} to {target}: it would fetch "
            "over plain HTTP what was asked for over HTTPS (allow it with "
            "allow_insecure_redirects=True, --allow-insecure-redirects or "
            "SUREFETCH_ALLOW_INSECURE_REDIRECTS=1)"
        )


def redirect_target(current: str, location: str, *, allow_insecure: bool) -> str:
    """The URL that ``location`` (a redirect from ``current``) leads to, if it may be followed.

    A relative location is resolved against ``current``; userinfo in it is
    dropped (credentials are never taken from a server's redirect). Raises
    `InsecureRedirectError` for ``https`` to ``http`` unless
    ``allow_insecure``, and `RedirectError` for a location that is no
    http(s) URL.

    Example:
        >>> redirect_target("https://h/a/b", "../c?x=1", allow_insecure=False)
        'https://h/c?x=1'
        >>> redirect_target("https://h/a", "http://h/a", allow_insecure=True)
        'http://h/a'
    """
    target = urljoin(current, location.strip())
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise RedirectError(
            f"Refusing to follow the redirect from {redact_url(current)} to "
            f"{redact_url(target)!r}: it is not an http(s) URL"
        )
    if parts.username is not None or parts.password is not None:
        netloc = parts.netloc.rpartition("@")[2]
        target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    if urlsplit(current).scheme.lower() == "https" and scheme == "http" and not allow_insecure:
        raise InsecureRedirectError(source=redact_url(current), target=redact_url(target))
    return target


def same_origin(first: str, second: str) -> bool:
    """Whether two URLs share scheme, host and port: where credentials may go.

    Example:
        >>> same_origin("https://h/a", "https://h:443/b"), same_origin("https://h/a", "http://h/a")
        (True, False)
    """
    return _origin(first) == _origin(second)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or ""), port or _DEFAULT_PORTS.get(scheme)


def follow_redirect(
    current: str, location: str, headers: dict[str, str], *, allow_insecure: bool
) -> tuple[str, dict[str, str]]:
    """Where a redirect from ``current`` leads, and the headers to send there.

    The target is `redirect_target`'s (which raises for a redirect not to
    follow); ``Authorization`` is dropped when the target is of another
    origin, as browsers do: credentials are for the origin they were given
    for. Both transports follow redirects through this function.

    Example:
        >>> follow_redirect("https://h/a", "https://other/a", {"Authorization": "Basic x"},
        ...                 allow_insecure=False)
        ('https://other/a', {})
    """
    target = redirect_target(current, location, allow_insecure=allow_insecure)
    if not same_origin(current, target):
        headers = {k: v for k, v in headers.items() if k != "Authorization"}
    logger.info("Following the redirect from %s to %s", redact_url(current), redact_url(target))
    return target, headers


def too_many_redirects(first: str, last: str) -> RedirectError:
    """The error when `MAX_REDIRECTS` were followed and the server still redirects.

    Example:
        >>> str(too_many_redirects("https://h/a", "https://h/b"))
        'Too many redirects from https://h/a: gave up after 10, the last to https://h/b'
    """
    return RedirectError(
        f"Too many redirects from {redact_url(first)}: gave up after {MAX_REDIRECTS}, "
        f"the last to {redact_url(last)}"
    )
