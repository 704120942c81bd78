"""docs/architecture.md names the code by ``harness/<path>.py:function`` (or ``:Class.method``): every name it
gives must exist, so the newcomer's map cannot drift from the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
REFERENCE = re.compile(r"`(harness/[\w/]+\.py):([\w.]+)`")


def _defined(path: Path) -> set[str]:
    """Top-level functions and classes of a module, and ``Class.method`` for the methods of its classes."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}.{sub.name}"
                for sub in node.body
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
    return names


def test_every_function_the_architecture_page_names_exists():
    found = REFERENCE.findall(DOC.read_text())
    assert len(found) >= 30, "the call chains name the functions they pass through"
    missing = [f"{path}:{name}" for path, name in found
               if not (REPO / path).is_file() or name not in _defined(REPO / path)]  # fmt: skip
    assert not missing, missing


def test_every_module_the_architecture_page_names_exists():
    paths = set(re.findall(r"`(harness/[\w/]+\.py)", DOC.read_text()))
    assert not [p for p in paths if not (REPO / p).is_file()]
