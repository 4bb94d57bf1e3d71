"""A Griffe extension for the API reference: read "Example:" as an examples section.

surefetch's docstrings head their examples with "Example:", as Google style
allows. Griffe's Google parser only knows the plural, "Examples:", and reads
the singular as an admonition whose text is Markdown, where ``>>>`` starts a
block quote. Renaming the heading before the docstring is parsed renders the
doctests as code. Loaded by ``mkdocs.yml``; not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Turn every "Example:" heading into "Examples:"."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is not None and "Example:" in docstring.value:
            docstring.value = _HEADING.sub(r"\g<indent>Examples:", docstring.value)
