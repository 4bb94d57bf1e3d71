"""Whether a pyproject.toml may hold a ``[tool.surefetch]`` table: a byte test, no parsing.

A command-line cache hit must not pay for tomllib (tens of milliseconds)
in every project that merely depends on surefetch. This test is cheap and
errs one way only: it may say yes for a file without the table (a
``surefetch = ...`` key elsewhere), which then costs a parse, but never no
for a file with one, in any of TOML's spellings (``[tool.surefetch]``,
``[ tool . "surefetch" ]``, ``[tool]`` with ``surefetch = {...}`` or
``surefetch.key = ...``, ``tool.surefetch.key = ...``). Both the fast path
and `surefetch._config` use it, so they agree.
"""

from __future__ import annotations

_NAME = b"surefetch"
_SPACE = b" \t"
_QUOTES = b"\"'"


def may_hold_tool_table(data: bytes) -> bool:
    """Whether ``data`` (a pyproject.toml) may configure surefetch.

    A mention counts when it is written as a key or a table name: followed
    by ``=`` (not ``==``), ``.`` or, after a dot, ``]``.

    Example:
        >>> may_hold_tool_table(b'[project]\\ndependencies = ["surefetch>=1", "surefetch"]\\n')
        False
        >>> may_hold_tool_table(b'[tool.surefetch]\\nhttp_retries = 5\\n')
        True
        >>> may_hold_tool_table(b'[tool]\\nsurefetch = { offline = true }\\n')
        True
        >>> may_hold_tool_table(b'surefetch.offline = true')  # a key at the very start
        True
    """
    start = data.find(_NAME)
    while start >= 0:
        end = start + len(_NAME)
        after = data[end : end + 1]
        if after in _QUOTES and after:
            end += 1
        rest = data[end:].lstrip(_SPACE)
        before = data[:start]
        if before.endswith(_QUOTES[:1]) or before.endswith(_QUOTES[1:]):
            before = before[:-1]
        before = before.rstrip(_SPACE)
        last = before[-1:]
        starts_a_key = not (last.isalnum() or last in (b"-", b"_"))  # not part of a longer name
        keyed = rest.startswith(b".") or (rest.startswith(b"=") and not rest.startswith(b"=="))
        if keyed and starts_a_key:
            return True
        if rest.startswith(b"]") and before.endswith(b"."):
            return True
        start = data.find(_NAME, start + 1)
    return False
