"""Python requests as uv reads them: ``3.12``, ``>=3.11,<3.13``, ``cpython@3.12``, ``cp312``,
``3.13t``, a full key ``cpython-3.12.4-linux-x86_64-gnu``.

Parsing is pure; version arithmetic is `packaging`'s (specifiers and
versions, pre-releases included), never written by hand here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from surefetch._errors import ConfigError

FREETHREADED = "freethreaded"
IMPLEMENTATIONS = ("cpython", "pypy", "graalpy")

ACCEPTED = (
    "expected a version (3, 3.12, 3.12.4, 3.13t), a specifier (>=3.11,<3.13), "
    "cpython@3.12, cp312, or a key such as cpython-3.12.4-linux-x86_64-gnu"
)

_KEY = re.compile(
    r"(?P<implementation>[a-z]+)-(?P<version>[0-9][0-9a-z.]*)(?:\+(?P<variant>[a-z]+))?"
    r"-(?P<os>[a-z]+)-(?P<arch>[a-z0-9_]+)-(?P<libc>[a-z]+)"
)
_VERSION = re.compile(r"(?P<version>[0-9]+(?:\.[0-9]+){0,2}(?:(?:a|b|rc)[0-9]+)?)(?P<t>t?)")
_CP = re.compile(r"cp(?P<major>[0-9])(?P<minor>[0-9]{1,2})?(?P<t>t?)")


_ANY = SpecifierSet()


@dataclass(frozen=True, slots=True)
class PythonRequest:
    """What a request asks for: an implementation, versions, a variant, maybe a platform.

    ``specifier`` is a `packaging.specifiers.SpecifierSet` (empty: any
    version); ``prereleases`` whether pre-releases may match (only when the
    request names one); ``platform`` is ``"os-arch-libc"`` for a full key.

    Example:
        >>> request = parse_request("3.12")
        >>> request.implementation, str(request.specifier), request.variant
        ('cpython', '==3.12.*', None)
    """

    text: str
    implementation: str = "cpython"
    specifier: SpecifierSet = _ANY
    variant: str | None = None
    prereleases: bool = False
    platform: str | None = None

    def matches(
        self, *, implementation: str, version: str, variant: str | None, platform: str
    ) -> bool:
        """Whether a build of ``implementation`` ``version`` (``variant``) on ``platform`` fits.

        Example:
            >>> parse_request(">=3.11,<3.13").matches(
            ...     implementation="cpython", version="3.12.4", variant=None,
            ...     platform="linux-x86_64-gnu")
            True
        """
        if implementation != self.implementation or variant != self.variant:
            return False
        if self.platform is not None and platform != self.platform:
            return False
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        return self.specifier.contains(parsed, prereleases=self.prereleases or None)


def _version_specifier(text: str) -> tuple[SpecifierSet, bool]:
    """``3`` -> ``==3.*``, ``3.12`` -> ``==3.12.*``, ``3.12.4`` -> ``==3.12.4``."""
    version = Version(text)
    exact = len(version.release) >= 3 or version.is_prerelease
    spec = f"=={text}" if exact else f"=={text}.*"
    return SpecifierSet(spec), version.is_prerelease


def parse_request(text: str) -> PythonRequest:
    """Parse a Python request; a `ConfigError` names what is accepted.

    Example:
        >>> str(parse_request("cp312t").specifier), parse_request("cp312t").variant
        ('==3.12.*', 'freethreaded')
        >>> parse_request("cpython-3.12.4-linux-x86_64-gnu").platform
        'linux-x86_64-gnu'
        >>> parse_request("pypy@3.10").implementation
        'pypy'
    """
    raw = text
    text = text.strip().lower()
    if not text:
        raise ConfigError(f"Python request {raw!r} is not valid: {ACCEPTED}")
    implementation = "cpython"
    for name in IMPLEMENTATIONS:
        for separator in ("@", "-"):
            if text.startswith(name + separator) and not _KEY.fullmatch(text):
                implementation, text = name, text[len(name) + 1 :]
        if text == name:
            return PythonRequest(raw, implementation=name)
    key = _KEY.fullmatch(text)
    if key is not None and key["implementation"] in IMPLEMENTATIONS:
        try:
            specifier = SpecifierSet(f"=={key['version']}")
            prerelease = Version(key["version"]).is_prerelease
        except (InvalidSpecifier, InvalidVersion):
            raise ConfigError(f"Python request {raw!r} is not valid: {ACCEPTED}") from None
        return PythonRequest(
            raw,
            implementation=key["implementation"],
            specifier=specifier,
            variant=key["variant"],
            prereleases=prerelease,
            platform=f"{key['os']}-{key['arch']}-{key['libc']}",
        )
    variant: str | None = None
    cp = _CP.fullmatch(text)
    if cp is not None:
        text = cp["major"] + (f".{cp['minor']}" if cp["minor"] else "") + cp["t"]
    version = _VERSION.fullmatch(text)
    try:
        if version is not None:
            if version["t"]:
                variant = FREETHREADED
            specifier, prerelease = _version_specifier(version["version"])
        elif any(mark in text for mark in "<>=!~"):
            specifier = SpecifierSet(text)
            prerelease = any(Version(s.version.rstrip(".*")).is_prerelease for s in specifier)
        else:
            raise ConfigError(f"Python request {raw!r} is not valid: {ACCEPTED}")
    except (InvalidSpecifier, InvalidVersion):
        raise ConfigError(f"Python request {raw!r} is not valid: {ACCEPTED}") from None
    return PythonRequest(
        raw,
        implementation=implementation,
        specifier=specifier,
        variant=variant,
        prereleases=prerelease,
    )
