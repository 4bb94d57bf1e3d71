"""The layers of DESIGN.md, enforced: imports go down only, and nothing imports in a circle.

Every import in every module counts, including those inside functions and
under ``TYPE_CHECKING``: a lazy import is still a dependency, only a cheaper
one. Run alone with ``python -m pytest tests/test_layers.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import surefetch

PACKAGE = Path(surefetch.__file__).parent

# Lowest first. A module may import its own layer and the layers below it;
# the members of one rank with several names are peers and may not import
# each other.
LAYERS: list[tuple[str, ...]] = [
    (
        "_version",
        "_errors",
        "_dirs",
        "_pyproject",
        "_url",
        "_config",
        "_config_snapshot",
        "_run_sync",
        "_log",
    ),  # foundation, stdlib only
    ("_retry",),
    ("_fs",),
    ("_cache",),
    ("_http", "_extract"),
    ("_fetch",),
    ("_python", "_wheels", "testing"),  # the pipelines, and the test tools users import
    ("_cli",),
    ("__init__", "__main__", "fs", "cache", "python", "wheels"),  # public facades
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Whose imports may name `surefetch.testing`: the demo serves through the chaos server.
MAY_IMPORT_TESTING = frozenset({"_cli", "__init__", "testing"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def top_of(module: str) -> str:
    """The first component below ``surefetch``: the layer's package or module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """Every ``surefetch`` module that ``path`` imports, anywhere in it."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package=package)


def imports_in(source: str, *, package: str) -> set[str]:
    """Every ``surefetch`` module that ``source``, a module of ``package``, imports."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                # `from surefetch import _config` imports the module `_config`.
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if _is_module(submodule) else origin)
    modules = {m for m in found if m == "surefetch" or m.startswith("surefetch.")}
    return {m for m in modules if _is_module(m)}


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (
        PACKAGE / relative / "__init__.py"
    ).is_file()


def all_modules() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in graph.items():
        layer = top_of(module)
        for target in sorted(targets):
            if target == "surefetch":
                if module != "surefetch.__main__":
                    problems.append(f"{module} imports the facade `surefetch`")
                continue
            other = top_of(target)
            if other == layer:
                continue
            if other == "testing" and layer not in MAY_IMPORT_TESTING:
                problems.append(f"{module} imports {target}: only _cli imports testing")
            elif RANK[other] > RANK[layer]:
                problems.append(f"{module} ({layer}) imports {target} ({other}): upward")
            elif RANK[other] == RANK[layer] and RANK[layer] != 0:
                problems.append(f"{module} ({layer}) imports {target} ({other}): across")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles among modules, each as a path that returns to its start."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target == node or target not in graph:
                continue
            if state.get(target) == 1:
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted({top_of(m) for m in all_modules()} - set(RANK))
    assert unknown == [], f"add these to LAYERS in tests/test_layers.py: {unknown}"


def test_imports_go_down_only() -> None:
    assert upward_imports(all_modules()) == []


def test_no_module_imports_in_a_circle() -> None:
    graph = {m: t - {"surefetch"} for m, t in all_modules().items()}
    # A package's __init__ is what importing a submodule runs first: not an edge back.
    assert cycles(graph) == []


def test_private_packages_have_empty_inits() -> None:
    for init in PACKAGE.glob("_*/__init__.py"):
        assert init.read_text(encoding="utf-8").strip() == "", f"{init} is not empty"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from surefetch._fetch.request import FetchRequest\n", "upward"),
        ("def f():\n    from surefetch._cli.main import main\n", "upward"),
        ("from surefetch._extract.archive import extract_file\n", "across"),
        ("from .._fetch import request\n", "upward"),
    ],
)
def test_the_check_catches_a_wrong_import(source: str, expected: str) -> None:
    # The check must be able to fail: plant a wrong import in a module of _http.
    graph = all_modules()
    planted = "surefetch._http.planted"
    graph[planted] = imports_in(source, package="surefetch._http")
    problems = upward_imports(graph)
    assert any(p.startswith(planted) and expected in p for p in problems), problems


def test_the_check_catches_a_circle() -> None:
    graph = all_modules()
    graph["surefetch._errors"] = {*graph["surefetch._errors"], "surefetch._url"}
    assert ["surefetch._errors", "surefetch._url", "surefetch._errors"] in cycles(graph)


def names_in_code(path: Path) -> set[str]:
    """The identifiers and string constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias):
            found.update(node.name.split("."))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            found.update(node.value.replace(".", " ").split())
    return found


# The settings registry names the transports a user may choose (``transport =
# "aiohttp"``): a word in a setting's values and help, not knowledge of the library.
NAMES_THE_TRANSPORTS = {"surefetch._config"}


def test_only_the_http_layer_knows_aiohttp() -> None:
    knowing = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "aiohttp" in names_in_code(path)
        and top_of(module_name(path)) != "_http"
        and module_name(path) not in NAMES_THE_TRANSPORTS
    )
    assert knowing == []


def test_the_settings_registry_only_names_aiohttp_as_a_choice() -> None:
    config = PACKAGE / "_config.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(config.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module.split(".")[0])
    assert "tomllib" in imported  # the walk sees the imports made inside functions
    assert "aiohttp" not in imported
