"""The import layering of docs/design.md, read from the source with `ast`.

- `study.imaging` imports nothing else of `study` (it takes its limits as arguments);
- `study.stats` (pure statistics) imports nothing else of `study` but the error base
  `study.imaging.errors.VTTError`, which every error shown to a user extends;
- `synth` imports only `study.imaging` and `study.stats` of `study`;
- neither `study.imaging` nor `study.stats` imports `synth`.

Imports inside functions and `TYPE_CHECKING` blocks count, and so do module names written as
whole strings (`importlib.import_module("study.settings")`, lazy-import tables).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE_NAME = re.compile(r"(?:study|synth)(?:\.\w+)*")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every import of `source` in line order, relative ones made absolute;
    `from a import b` gives a.b, since b may be a module."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and MODULE_NAME.fullmatch(node.value)
        ):
            found.append((node.lineno, node.value))
    return sorted(found)


def within(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def imaging_rule(name: str) -> bool:
    return within(name, "study.imaging") or not within(name, "study", "synth")


def stats_rule(name: str) -> bool:
    # `study.imaging.errors.VTTError` and the module itself, as `from` imports name both.
    return (
        within(name, "study.stats")
        or name in ("study.imaging.errors", "study.imaging.errors.VTTError")
        or not within(name, "study", "synth")
    )


def synth_rule(name: str) -> bool:
    return within(name, "study.imaging", "study.stats", "synth") or not within(name, "study")


def violations(folder: str, allowed: Callable[[str], bool]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        module = module_name(path)
        imports = imported_modules(path.read_text(), module, path.name == "__init__.py")
        found += [
            f"{path.relative_to(ROOT)}:{line}: {name}"
            for line, name in imports
            if not allowed(name)
        ]
    return found


@pytest.mark.parametrize(
    ("folder", "allowed"),
    [("study/imaging", imaging_rule), ("study/stats", stats_rule), ("synth", synth_rule)],
)
def test_layering(folder: str, allowed: Callable[[str], bool]) -> None:
    assert list((ROOT / folder).rglob("*.py")), f"no modules under {folder}"
    assert violations(folder, allowed) == []


def test_the_checker_sees_every_kind_of_import() -> None:
    source = """
import study.settings
from study import settings
from study.db import engine
from . import sibling
from ..reports import x
import importlib
importlib.import_module("study.jobs")

def later():
    from synth.train import train
"""
    found = imported_modules(source, "study.stats.roc", is_package=False)
    assert [name for _, name in found] == [
        "study.settings",
        "study.settings",
        "study.db.engine",
        "study.stats.sibling",
        "study.reports.x",
        "importlib",
        "study.jobs",
        "synth.train.train",
    ]
    assert [name for _, name in found if not stats_rule(name)] == [
        "study.settings",
        "study.settings",
        "study.db.engine",
        "study.reports.x",
        "study.jobs",
        "synth.train.train",
    ]
    assert not synth_rule("study.settings") and synth_rule("study.stats.roc")
    assert not imaging_rule("study.stats") and imaging_rule("numpy")


def study_rule(name: str) -> bool:
    """`study` knows the generator only through its contract (and runs `python -m synth`)."""
    return within(name, "synth.contract") or not within(name, "synth")


def no_streamlit(name: str) -> bool:
    return not within(name, "streamlit")


@pytest.mark.parametrize(
    ("folder", "allowed"),
    [
        ("study", study_rule),
        ("pages", study_rule),
        ("study", no_streamlit),
        ("synth", no_streamlit),
    ],
)
def test_the_application_knows_the_generator_by_its_contract_only(
    folder: str, allowed: Callable[[str], bool]
) -> None:
    assert violations(folder, allowed) == []


def module_level_imports(path: Path) -> set[str]:
    """The modules of this project that `path` imports when it is imported (imports inside
    functions and `TYPE_CHECKING` blocks are left out: they run later, or never)."""
    module = module_name(path)
    tree = ast.parse(path.read_text())
    nodes: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        nodes.append(node)
    source = "\n".join(
        ast.unparse(node) for node in nodes if isinstance(node, ast.Import | ast.ImportFrom)
    )
    names = {name for _, name in imported_modules(source, module, path.name == "__init__.py")}
    return {resolved for name in names if (resolved := _known_module(name)) is not None}


def _known_module(name: str) -> str | None:
    """The longest prefix of `name` that is a module or package of this project."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ROOT.joinpath(*parts[:end])
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts[:end])
    return None


def import_loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk of `graph` (module -> modules it imports) runs into."""
    loops: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            # A package's __init__ importing its own submodules is not a loop.
            if target.startswith(f"{module}.") or module.startswith(f"{target}."):
                continue
            if state.get(target) == 1:
                loops.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return loops


def test_the_loop_finder_finds_loops() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "p": {"p.x"}, "p.x": {"d"}, "d": set()}
    assert import_loops(graph) == [["a", "b", "c", "a"]]


def test_no_import_loops() -> None:
    graph = {
        module_name(path): module_level_imports(path) - {module_name(path)}
        for folder in ("study", "synth", "pages")
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert len(graph) > 100 and any(graph.values())
    assert import_loops(graph) == []
