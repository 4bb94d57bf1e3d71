"""What a built wheel must be before it is cached, and what the sdist says it is.

A backend can write anything into the output directory: a file that is not
a zip, a wheel named for another project or version, one whose tags no
interpreter here can use. Each is refused with the reason, before the cache
sees it.
"""

from __future__ import annotations

import email.parser
import zipfile
from dataclasses import dataclass
from pathlib import Path

from surefetch._errors import SurefetchError


class WheelCheckError(SurefetchError):
    """A backend produced a wheel that surefetch refuses to cache.

    Example:
        >>> str(WheelCheckError("demo-1.0-py3-none-any.whl is not a zip file"))
        'demo-1.0-py3-none-any.whl is not a zip file'
    """


@dataclass(frozen=True, slots=True)
class SdistMetadata:
    """Name and version from an sdist's ``PKG-INFO``.

    Example:
        >>> SdistMetadata("demo", "1.0").label
        'demo-1.0'
    """

    name: str
    version: str

    @property
    def label(self) -> str:
        """``name-version``, as errors name the sdist."""
        return f"{self.name}-{self.version}"


def read_sdist_metadata(source_dir: Path) -> SdistMetadata | None:
    """Name and version from ``source_dir/PKG-INFO``; None when there is none.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "PKG-INFO").write_text("Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n")
        >>> read_sdist_metadata(d)
        SdistMetadata(name='demo', version='1.0')
    """
    try:
        text = (source_dir / "PKG-INFO").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    headers = email.parser.HeaderParser().parsestr(text)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    return SdistMetadata(str(name).strip(), str(version).strip())


def label_from_filename(filename: str) -> str:
    """``name-version`` guessed from an sdist's file name, for errors before it is unpacked.

    Example:
        >>> label_from_filename("demo-1.0.tar.gz")
        'demo-1.0'
    """
    for suffix in (".tar.gz", ".tgz", ".zip", ".tar"):
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return filename


@dataclass(frozen=True, slots=True)
class CheckedWheel:
    """A wheel that passed `check_wheel`: its parsed name, version and tags.

    Example:
        >>> CheckedWheel("demo", "1.0", ("py3-none-any",)).tags
        ('py3-none-any',)
    """

    name: str
    version: str
    tags: tuple[str, ...]


def check_wheel(path: Path, *, expected: SdistMetadata | None) -> CheckedWheel:
    """Refuse ``path`` unless it is a wheel of ``expected`` that this interpreter can use.

    Its file name parses, name and version match the sdist's (when known),
    it is a zip whose members' CRCs hold, it has a ``RECORD``, and one of
    its tags is in `packaging.tags.sys_tags`.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> wheel = d / "demo-1.0-py3-none-any.whl"
        >>> with zipfile.ZipFile(wheel, "w") as z:
        ...     z.writestr("demo-1.0.dist-info/RECORD", "")
        >>> check_wheel(wheel, expected=SdistMetadata("demo", "1.0")).tags
        ('py3-none-any',)
    """
    from packaging.tags import sys_tags
    from packaging.utils import (
        InvalidWheelFilename,
        canonicalize_name,
        canonicalize_version,
        parse_wheel_filename,
    )

    filename = path.name
    try:
        name, version, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise WheelCheckError(f"The backend wrote {filename!r}: {error}") from None
    if expected is not None:
        if name != canonicalize_name(expected.name):
            raise WheelCheckError(
                f"The backend wrote {filename}, a wheel of {name}, not of {expected.name}"
            )
        if canonicalize_version(version) != canonicalize_version(expected.version):
            raise WheelCheckError(
                f"The backend wrote {filename}, version {version}, "
                f"but the sdist is version {expected.version}"
            )
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise WheelCheckError(f"{filename} is not a valid zip file: {error}") from None
    if bad is not None:
        raise WheelCheckError(f"{filename} is damaged: the member {bad} fails its CRC check")
    if not any(member.endswith(".dist-info/RECORD") and member.count("/") == 1 for member in names):
        raise WheelCheckError(f"{filename} has no .dist-info/RECORD")
    supported = set(sys_tags())
    if not any(tag in supported for tag in tags):
        shown = ", ".join(sorted(str(tag) for tag in tags))
        raise WheelCheckError(f"{filename} has tags ({shown}) that this interpreter cannot use")
    return CheckedWheel(name, str(version), tuple(sorted(str(tag) for tag in tags)))
