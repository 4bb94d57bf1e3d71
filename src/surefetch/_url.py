"""URL checks and credential redaction (pure, no I/O).

Credentials in a URL (``user:password@`` or a token in the query string)
must never reach a log, an error or ``--json`` output. `redact_url` hides
them in a URL; `Redactor` scrubs the secret values out of any text, such as
an exception message from a library that quoted the URL.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

from surefetch._errors import ConfigError

REDACTED = "***"
# Query keys whose values are hidden (the rule is documented in
# docs/guide/downloads.md, "Credentials"; tests/test_redaction.py holds it):
# a key containing one of these words, in any case, or any parameter of an AWS
# or Google Cloud signed URL (every one of them is part of the signature) ...
_SECRET_KEY_WORDS = re.compile(
    r"token|secret|pass|pwd|auth|cred|session|sig|key|code|cookie|jwt|hmac|accessid|"
    r"^x-amz-|^x-goog-",
    re.IGNORECASE,
)
# ... or one of these short keys exactly: a session id, and the fields of an
# Azure shared access signature (signed version, services, resource types,
# permissions, expiry, start, protocol, resource, identifier, IP range, and
# the signed-key fields of a user delegation SAS).
# fmt: off
_SECRET_KEYS = frozenset((
    "sid", "sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "si", "sip", "sdd", "ske", "skoid",
    "skt", "sktid", "sks", "skv", "saoid", "suoid", "scid", "ses", "rscc", "rscd", "rsce", "rscl",
    "rsct",
))
# fmt: on
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
    if not parts.scheme or "://" not in url:
        raise ConfigError(
            f"URL {redact_url(url)!r} is not valid: expected an absolute URL that starts "
            "with http:// or https://"
        )
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(
            f"URL {redact_url(url)!r} is not supported: scheme {parts.scheme!r}, "
            "expected http or https"
        )
    if not parts.hostname:
        raise ConfigError(f"URL {redact_url(url)!r} is not valid: it has no host")
    problem = host_problem(parts.hostname)
    if problem is not None:
        raise ConfigError(f"URL {redact_url(url)!r} is not valid: {problem}")
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


def host_problem(host: str) -> str | None:
    """What is wrong with the host name ``host`` (as DNS and IDNA see it), or None.

    Checked before any connection, so that a bad host is a usage error (exit
    code 2) rather than a failed download. IP addresses pass as they are.

    Example:
        >>> host_problem("example.org") is None
        True
        >>> host_problem("a" * 64 + ".org")
        "the host name's label 'aaaaaaaaaaaa...' is longer than 63 characters"
    """
    if ":" in host or host.replace(".", "").isdigit():
        return None  # an IPv6 or IPv4 address: urlsplit has already read it
    try:
        # The stdlib codec (IDNA 2003) is what the transport uses; it is loaded
        # only for names that need it, a plain ASCII name is checked by hand.
        if not host.isascii():
            wire = host.encode("idna").decode("ascii")
        else:
            wire = host
            if "xn--" in host.lower():
                host.encode("ascii").decode("idna")
    except UnicodeError as error:
        return f"the host name {host!r} is not a valid international domain name ({error})"
    labels = wire.rstrip(".").split(".")
    for label in labels:
        if not label:
            return f"the host name {host!r} has an empty label"
        if len(label) > 63:
            return f"the host name's label {label[:12] + '...'!r} is longer than 63 characters"
    if len(wire.rstrip(".")) > 253:
        return f"the host name is longer than 253 characters ({len(wire)})"
    return None


def is_secret_key(key: str) -> bool:
    """Whether the value of the query (or fragment) parameter ``key`` is hidden when shown.

    True for a key that contains ``token``, ``secret``, ``pass``, ``pwd``,
    ``auth``, ``cred``, ``session``, ``sig``, ``key``, ``code``, ``cookie``,
    ``jwt``, ``hmac`` or ``accessid`` (in any case), that starts with
    ``x-amz-`` or ``x-goog-``, or that is exactly ``sid`` or a field of an
    Azure shared access signature (``sv``, ``se``, ``sp``, ``sr``, ``st``,
    ``spr``, ...). Hiding a value that was not secret costs little; showing
    one that was costs a credential.

    Example:
        >>> [is_secret_key(k) for k in ("code", "X-Amz-Date", "sv", "version", "name")]
        [True, True, True, False, False]
    """
    name = key.strip().lower()
    return name in _SECRET_KEYS or _SECRET_KEY_WORDS.search(name) is not None


def _split(url: str) -> tuple[str, str, str, str | None, str | None]:
    """``url`` as (scheme and ``//``, authority, path, query or None, fragment or None).

    By hand rather than with `urlsplit`, which raises on some inputs and
    re-assembles others differently: what is shown must be the URL as given,
    with only its secrets replaced. Without a scheme, the text up to the first
    ``/`` counts as the authority, so that ``user:password@host/...`` typed
    without ``https://`` is still recognised.
    """
    head, hash_mark, fragment = url.partition("#")
    head, question_mark, query = head.partition("?")
    scheme_end = head.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
    elif head.startswith("//"):
        start = 2
    else:
        start = 0
    slash = head.find("/", start)
    end = len(head) if slash < 0 else slash
    return (
        head[:start],
        head[start:end],
        head[end:],
        query if question_mark else None,
        fragment if hash_mark else None,
    )


def _redact_parameters(text: str) -> str:
    pieces = []
    for piece in text.split("&"):
        key, equals, value = piece.partition("=")
        if equals and value and is_secret_key(unquote_plus(key)):
            piece = f"{key}={REDACTED}"
        pieces.append(piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """Hide the userinfo and the values of secret-looking parameters (`is_secret_key`) of ``url``.

    Everything else keeps its exact form. The result is for showing only:
    requests and cache keys use the real URL.

    Example:
        >>> redact_url("http://u:p@h/x?a=1&access_token=s3cret&X-Amz-Signature=ab12")
        'http://***@h/x?a=1&access_token=***&X-Amz-Signature=***'
        >>> redact_url("https://acct.blob.core.windows.net/c/f.zip?sv=2021-08-06&se=2030-01-01&sp=r&sig=Zm9v")
        'https://acct.blob.core.windows.net/c/f.zip?sv=***&se=***&sp=***&sig=***'
    """
    prefix, authority, path, query, fragment = _split(url)
    if "@" in authority:
        authority = f"{REDACTED}@{authority.rpartition('@')[2]}"
    shown = prefix + authority + path
    if query is not None:
        shown += "?" + _redact_parameters(query)
    if fragment is not None:
        shown += "#" + _redact_parameters(fragment)
    return shown


# Shorter secrets are not scrubbed out of free text: replacing every "ab" would
# garble messages, and a two-character secret protects nothing anyway. Within
# a URL, `redact_url` hides values of any length.
_MIN_SCRUBBED = 3


def secrets_of(url: str) -> list[str]:
    """The secret strings in ``url`` (password, secret parameter values), longest first.

    Both as written and percent-decoded, since a message may quote either.

    Example:
        >>> secrets_of("https://me:pw%21x@h/f?sig=a%2Bb&v=1")
        ['pw%21x', 'a%2Bb', 'pw!x', 'a+b']
    """
    prefix, authority, _, query, fragment = _split(url)
    found: list[str] = []
    userinfo, at, _ = authority.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            found += [password, unquote(password)]
        elif prefix:
            found += [user, unquote(user)]  # a bare token as the user name
    for text in (query, fragment):
        for piece in (text or "").split("&"):
            key, equals, value = piece.partition("=")
            if equals and value and is_secret_key(unquote_plus(key)):
                found += [value, unquote_plus(value), unquote(value)]
    return sorted({s for s in found if len(s) >= _MIN_SCRUBBED}, key=len, reverse=True)


class Redactor:
    """Scrubs known secret values out of text.

    It knows the secrets of the URLs it is given (`secrets_of`): give it every
    word that may hold one, such as every word of a command line.

    Example:
        >>> r = Redactor(["https://u:hunter22@h/x"])
        >>> r.scrub("failed: https://u:hunter22@h/x")
        'failed: https://u:***@h/x'
    """

    def __init__(self, urls: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for url in urls:
            self.add(url)

    def add(self, url: str) -> None:
        """Remember the secrets of one more URL.

        Example:
            >>> r = Redactor()
            >>> r.add("extra?token=abc123")
            >>> r.scrub("unrecognized arguments: extra?token=abc123")
            'unrecognized arguments: extra?token=***'
        """
        merged = set(self._secrets) | set(secrets_of(url))
        self._secrets = sorted(merged, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``.

        Example:
            >>> Redactor(["https://h/f?sig=s3cr3t"]).scrub("GET /f?sig=s3cr3t: 403")
            'GET /f?sig=***: 403'
        """
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
