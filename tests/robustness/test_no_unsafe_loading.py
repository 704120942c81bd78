"""A static check of the harness package source: nothing that can run code from a file it reads.

Forbidden: importing pickle-like modules (pickle, dill, marshal, shelve, joblib, cloudpickle); calling
the builtins eval, exec or compile; ``torch.load`` without ``weights_only=True``; ``torch.jit.load``;
``yaml.load``/``unsafe_load``/``full_load`` (and their ``_all`` forms) and the unsafe YAML loader
classes; ``numpy.load(..., allow_pickle=True)``; ``pandas.read_pickle``; ``trust_remote_code=True``
and ``use_safetensors=False``. The checker reads the syntax tree, so ``model.eval()`` (a method) and
these words in comments or strings do not count; its own test cases show it finds each pattern.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness

PACKAGE = Path(harness.__file__).resolve().parent
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}
UNSAFE_YAML_LOADERS = {"Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}
BUILTINS = {"eval", "exec", "compile"}


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def findings(source: str, filename: str = "<source>") -> list[str]:
    """Every unsafe-loading pattern in ``source``, as 'file:line: what'."""
    found = []
    tree = ast.parse(source, filename)
    yaml_names = {"yaml"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PICKLE_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
                if alias.name == "yaml" and alias.asname:
                    yaml_names.add(alias.asname)
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            names = {alias.name for alias in node.names}
            if module in PICKLE_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
            if module == "yaml" and names & (UNSAFE_YAML | UNSAFE_YAML_LOADERS):
                found.append(f"{filename}:{node.lineno}: from yaml import {', '.join(sorted(names))}")
            if module == "torch" and "load" in names:
                found.append(f"{filename}:{node.lineno}: from torch import load")
        elif isinstance(node, ast.Attribute):
            base = _dotted(node.value)
            if base in yaml_names and node.attr in UNSAFE_YAML_LOADERS:
                found.append(f"{filename}:{node.lineno}: yaml.{node.attr}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if isinstance(node.func, ast.Name) and name in BUILTINS:
            found.append(f"{filename}:{node.lineno}: {name}()")
        elif name.endswith("torch.load") or name == "torch.load":
            if not _keyword_is(node, "weights_only", True):
                found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
        else:
            yaml_call = name.split(".")[0] in yaml_names and name.count(".") == 1 and name.split(".")[1] in UNSAFE_YAML
            if yaml_call or name.endswith(("jit.load", "read_pickle")):
                found.append(f"{filename}:{node.lineno}: {name}")
        if _keyword_is(node, "allow_pickle", True):
            found.append(f"{filename}:{node.lineno}: allow_pickle=True")
        if _keyword_is(node, "trust_remote_code", True):
            found.append(f"{filename}:{node.lineno}: trust_remote_code=True")
        if _keyword_is(node, "use_safetensors", False):
            found.append(f"{filename}:{node.lineno}: use_safetensors=False")
    return found


def test_the_harness_package_loads_nothing_unsafely():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20 and PACKAGE / "training" / "checkpoint.py" in files
    found = [f for path in files for f in findings(path.read_text(), str(path.relative_to(PACKAGE.parent)))]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import dill as d",
        "from pickle import loads",
        "from joblib import load",
        "import torch\ntorch.load('x.pt')",
        "import torch\ntorch.load('x.pt', weights_only=False)",
        "from torch import load",
        "import torch\ntorch.jit.load('m.pt')",
        "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
        "import yaml\nyaml.unsafe_load(text)",
        "import yaml as y\ny.full_load(text)",
        "import yaml\nyaml.safe_load(t)\nx = yaml.Loader",
        "from yaml import load",
        "eval('1 + 1')",
        "exec(code)",
        "compile(src, 'f', 'exec')",
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
        "import pandas as pd\npd.read_pickle('f')",
        "AutoModel.from_pretrained(path, trust_remote_code=True)",
        "AutoModel.from_pretrained(path, use_safetensors=False)",
    ],
)
def test_the_checker_finds_each_pattern(source):
    assert findings(source)


@pytest.mark.parametrize(
    "source",
    [
        "model.eval()",
        "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
        "import yaml\nyaml.safe_load(text)",
        "class L(yaml.SafeLoader): pass",
        "# torch.load(x) and pickle in a comment\ns = 'eval(x)'",
        "import numpy as np\nnp.load('a.npy')",
    ],
)
def test_the_checker_allows_safe_code(source):
    assert findings(source) == []
