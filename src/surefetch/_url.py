"""URL checks and credential redaction (pure, no I/O).

Credentials in a URL (``user:password@`` or a token in the query string)
must never reach a log, an error or ``--json`` output. `redact_url` hides
them in a URL; `Redactor` scrubs the secret values out of any text, such as
an exception message from a library that quoted the URL.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from surefetch._errors import ConfigError

REDACTED = "***"
_SECRET_QUERY_KEYS = re.compile(
    r"(token|key|secret|sig|signature|password|passwd|pwd|auth|credential|session|"
    r"^x-amz-|^x-goog-)",
    re.IGNORECASE,
)
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._+-]")


class ParsedURL:
    """A checked URL, split into what goes on the wire and the credentials.

    ``url`` is the URL without userinfo (what is sent, and what the cache key
    is made from); ``redacted`` is the URL to show people.

    Example:
        >>> parsed = ParsedURL("https://h/x", "me", "pw", "https://***@h/x", "h")
        >>> parsed.username, parsed.redacted
        ('me', 'https://***@h/x')
    """

    # A plain class rather than a dataclass: a command-line cache hit parses
    # URLs, and importing dataclasses would cost it more than the rest.
    __slots__ = ("host", "password", "redacted", "url", "username")

    def __init__(
        self, url: str, username: str | None, password: str | None, redacted: str, host: str
    ) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.redacted = redacted
        self.host = host

    def __repr__(self) -> str:
        return f"ParsedURL({self.redacted!r})"


def parse_url(url: str) -> ParsedURL:
    """Check that ``url`` is an absolute http(s) URL and split off its credentials.

    Raises `ConfigError` for anything else (exit code 2 on the command line).

    Example:
        >>> parse_url("https://me:pw@example.org/f.tar.gz?token=abc").redacted
        'https://***@example.org/f.tar.gz?token=***'
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"URL {redact_url(url)!r} is not valid: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "none"
        raise ConfigError(
            f"URL {redact_url(url)!r} is not supported: scheme {shown!r}, expected http or https"
        )
    if not parts.hostname:
        raise ConfigError(f"URL {redact_url(url)!r} is not valid: it has no host")
    if any(c.isspace() for c in url.strip()):
        raise ConfigError(f"URL {redact_url(url)!r} is not valid: it contains white space")
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    wire = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    return ParsedURL(
        url=wire,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        redacted=redact_url(url),
        host=host,
    )


def redact_url(url: str) -> str:
    """Hide the userinfo and secret-looking query values of ``url``.

    Example:
        >>> redact_url("http://u:p@h/x?a=1&access_token=s3cret")
        'http://***@h/x?a=1&access_token=***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_QUERY_KEYS.search(k) for k, _ in pairs):
            query = urlencode(
                [(k, REDACTED if _SECRET_QUERY_KEYS.search(k) else v) for k, v in pairs],
                safe="*",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_of(url: str) -> list[str]:
    """The secret strings in ``url`` (password, secret query values), longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    if parts.username and parts.password is None:
        found += [parts.username, unquote(parts.username)]  # a bare token as user
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and _SECRET_QUERY_KEYS.search(key):
            found.append(value)
    raw_query = parts.query
    for piece in raw_query.split("&"):
        key, _, value = piece.partition("=")
        if value and _SECRET_QUERY_KEYS.search(unquote(key)):
            found.append(value)
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


class Redactor:
    """Scrubs known secret values out of text.

    Example:
        >>> r = Redactor(["https://u:hunter22@h/x"])
        >>> r.scrub("failed: https://u:hunter22@h/x")
        'failed: https://u:***@h/x'
    """

    def __init__(self, urls: list[str] | tuple[str, ...] = ()) -> None:
        self._secrets: list[str] = []
        for url in urls:
            self.add(url)

    def add(self, url: str) -> None:
        """Remember the secrets of one more URL."""
        merged = set(self._secrets) | set(secrets_of(url))
        self._secrets = sorted(merged, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def filename_from_url(url: str) -> str:
    """A safe file name for a download, from the last segment of the URL path.

    Example:
        >>> filename_from_url("https://h/dl/cpython-3.12.tar.gz?x=1")
        'cpython-3.12.tar.gz'
        >>> filename_from_url("https://h/")
        'download'
    """
    name = posixpath.basename(unquote(urlsplit(url).path))
    name = _SAFE_FILENAME.sub("_", name).lstrip(".")
    return name[:200] or "download"


def check_sha256(value: str | None) -> str | None:
    """Normalise a hex sha256 (optionally prefixed ``sha256:``) or raise `ConfigError`.

    Example:
        >>> check_sha256("SHA256:" + "AB" * 32) == "ab" * 32
        True
    """
    if value is None:
        return None
    text = value.strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"sha256 {value!r} is not valid: expected 64 hexadecimal digits")
    return text
