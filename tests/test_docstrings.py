"""Every public name has a docstring with an example, and every doctest passes.

Public names are those in the ``__all__`` of `surefetch`, `surefetch.fs`,
`surefetch.cache` and `surefetch.testing`; for a class, its public methods
(functions, classmethods and staticmethods) defined in a surefetch class of
its MRO count too. An example is an "Example:" (or "Examples:") section or a
doctest prompt. Constants and type aliases carry no docstring of their own at
run time, so they are documented in the guide instead and skipped here.

The doctests of every module under `surefetch` run with ``doctest.ELLIPSIS``.
Nothing is skipped here: an example that needs the network is marked
``# doctest: +SKIP`` in the source, where a reader sees it.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import surefetch

PUBLIC_MODULES = (
    "surefetch",
    "surefetch.fs",
    "surefetch.cache",
    "surefetch.testing",
    "surefetch.wheels",
)
_EXAMPLE = re.compile(r"^\s*(Examples?:|>>>)", re.MULTILINE)
# Modules that run code when imported, so their doctests cannot be collected by
# importing them; the test checks instead that their source holds no doctest.
_NOT_IMPORTABLE = frozenset({"surefetch.__main__"})


def _has_example(obj: object) -> bool:
    # The object's own docstring: inspect.getdoc would fall back to a base
    # class's, and a subclass would pass on its parent's example.
    return bool(_EXAMPLE.search(getattr(obj, "__doc__", None) or ""))


def _own_methods(cls: type) -> Iterator[tuple[str, object]]:
    """Public methods of ``cls`` defined in surefetch classes of its MRO, each once."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("surefetch"):
            continue
        for name, attribute in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            function = attribute
            if isinstance(attribute, (classmethod, staticmethod)):
                function = attribute.__func__
            if inspect.isfunction(function):
                seen.add(name)
                yield name, function


def _public_objects() -> Iterator[tuple[str, object]]:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # a constant or a type alias: no docstring of its own
            qualified = f"{module_name}.{name}"
            yield qualified, obj
            if inspect.isclass(obj):
                for method_name, method in _own_methods(obj):
                    yield f"{qualified}.{method_name}", method


PUBLIC = dict(_public_objects())


def test_public_names_are_found() -> None:
    assert "surefetch.fetch" in PUBLIC
    assert "surefetch.cache.Cache.verify" in PUBLIC
    assert "surefetch.testing.ChaosServer.script" in PUBLIC


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    missing = sorted(name for name, obj in PUBLIC.items() if not _has_example(obj))
    assert not missing, (
        f"{len(missing)} public names lack a docstring with an example "
        "(an 'Example:' section or a '>>>' line):\n  " + "\n  ".join(missing)
    )


def _module_names() -> list[str]:
    names = [surefetch.__name__]
    for info in pkgutil.walk_packages(surefetch.__path__, prefix="surefetch."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def test_the_walk_finds_the_modules() -> None:
    assert {"surefetch._retry.loops", "surefetch.testing._chaos", "surefetch._extract.tar"} <= set(
        MODULES
    )


@pytest.mark.parametrize("module_name", sorted(_NOT_IMPORTABLE))
def test_modules_not_imported_hold_no_doctest(module_name: str) -> None:
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    assert ">>>" not in Path(spec.origin).read_text(encoding="utf-8")


def _run_doctests(module: ModuleType) -> tuple[int, int, str]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    report: list[str] = []
    for test in finder.find(module, module.__name__):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    return result.failed, result.attempted, "".join(report)


@pytest.mark.parametrize("module_name", [m for m in MODULES if m not in _NOT_IMPORTABLE])
def test_doctests(module_name: str) -> None:
    module = importlib.import_module(module_name)
    failed, _attempted, report = _run_doctests(module)
    assert failed == 0, f"doctests failed in {module_name}:\n{report}"
