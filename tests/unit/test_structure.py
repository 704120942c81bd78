"""The shape of the code: modules of a few hundred lines, no import cycles (lazy imports counted), dispatch by
the kind registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MODULES = sorted(HARNESS.rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(HARNESS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(HARNESS.parent)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_package_init_files_hold_no_code():
    for path in HARNESS.rglob("__init__.py"):
        body = [node for node in ast.parse(path.read_text()).body if not isinstance(node, ast.Expr)]
        assert all(isinstance(n, ast.Assign) and n.targets[0].id == "__version__" for n in body), path


def _imports(path: Path, known: set[str]) -> set[str]:
    """The harness modules a module imports, at load or inside a function (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for sub in ast.walk(node)}  # fmt: skip
    found = set()
    for sub in ast.walk(tree):
        if id(sub) in typing_only:
            continue
        if isinstance(sub, ast.Import):
            found |= {a.name for a in sub.names}
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            found |= {f"{sub.module}.{a.name}" for a in sub.names} | {sub.module}
    return {m for m in found if m in known}


def test_no_import_cycles():
    known = {_name(p): p for p in MODULES}
    graph = {name: _imports(path, set(known)) - {name} for name, path in known.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_code_asks_the_task_not_its_kind():
    """Dispatch goes through the kind registry: at most four comparisons of a task's kind by name, anywhere."""
    pattern = re.compile(r"\bkind\s*(==|!=|\bin\b|\bnot in\b)")
    found = [f"{p.relative_to(HARNESS.parent)}:{i}" for p in MODULES
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line.split("#")[0])]  # fmt: skip
    assert len(found) <= 4, found


def test_only_the_kinds_import_the_naming_kind_and_data_imports_no_kind():
    """A task kind is reached through the registry: no module outside harness/kinds imports harness.kinds.naming
    (the results side names cells from the stored settings), and harness/data imports no kind at all."""
    known = {_name(p) for p in MODULES}
    kinds = HARNESS / "kinds"
    naming = [_name(p) for p in MODULES if kinds not in p.parents and "harness.kinds.naming" in _imports(p, known)]
    assert not naming, naming
    data = {_name(p): sorted(m for m in _imports(p, known) if m == "harness.kinds" or m.startswith("harness.kinds."))
            for p in MODULES if HARNESS / "data" in p.parents}  # fmt: skip
    assert not any(data.values()), {k: v for k, v in data.items() if v}


def _importers(prefix: str) -> dict[str, set[str]]:
    """Each harness module and the modules of ``prefix`` (a package or module name) that it imports."""
    known = {_name(p): p for p in MODULES}
    return {name: {m for m in _imports(path, set(known)) if m == prefix or m.startswith(prefix + ".")}
            for name, path in known.items()}  # fmt: skip


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.slow
def test_the_layers_import_downwards_only():
    """The layers (docs/architecture.md): the command line sits on top and nothing imports it; models and
    training never reach up into results; data never asks the task kinds."""
    rules = [  # (importers, imported): modules under the first never import modules under the second
        ("harness.models", "harness.results"),
        ("harness.training", "harness.results"),
        ("harness.models", "harness.evaluation"),
        ("harness.training", "harness.evaluation"),
        ("harness.data", "harness.kinds"),
        ("harness.metrics", "harness.results"),
    ]
    found = []
    for importers, imported in rules:
        found += [f"{name} imports {sorted(hits)}" for name, hits in _importers(imported).items()
                  if hits and _inside(name, importers)]  # fmt: skip
    found += [f"{name} imports the command line" for name, hits in _importers("harness.cli").items()
              if hits and not _inside(name, "harness.cli") and name != "harness.__main__"]  # fmt: skip
    assert not found, found


def test_the_top_level_holds_the_shared_core_only():
    """Modules live in the package of their layer; the top level keeps the few that every layer shares."""
    top = sorted(p.stem for p in HARNESS.glob("*.py"))
    assert len(top) <= 12, top
