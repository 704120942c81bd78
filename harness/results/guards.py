"""Guard rails: what else two compared models differ in, beyond what the comparison is about.

Each run folder's config.json holds the model's full recipe (``model.recipe``). Two cells' recipes are compared
field by field (a field one record lacks, written before it existed, as its default), leaving out ``name``,
``description`` and ``seed`` (a training seed is pooled, not a difference of
recipe). A comparison is about the recipes it names: the fields the two named recipe files (as the catalog resolves
them now, ``base:`` chains included) set differently are its own axis; every other differing field is printed as
"these models also differ in: ...", e.g. a ``--set`` given to one side only, or a recipe file changed since a run.
A recipe the catalog does not know has no known axis: every differing field is printed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

IGNORED = ("name", "description", "seed")


@functools.lru_cache(maxsize=4096)
def _recipe(run_dir: str) -> str:
    from harness.errors import HarnessError
    from harness.results.rundir import RunDir

    try:
        model = RunDir(Path(run_dir)).config().get("model") or {}
    except HarnessError:
        return "{}"
    recipe = model.get("recipe") if isinstance(model, dict) else None
    return json.dumps(recipe if isinstance(recipe, dict) else {}, sort_keys=True, default=str)


def _catalog_difference(a: str | None, b: str | None) -> set[str]:
    """The fields the catalog's recipes ``a`` and ``b`` set differently (empty where either is unknown)."""
    from harness import registry
    from harness.errors import HarnessError

    if a == b or not a or not b:
        return set()
    try:
        ra, rb = dataclasses.asdict(registry.RECIPES.get(a)), dataclasses.asdict(registry.RECIPES.get(b))
    except (HarnessError, TypeError):
        return set()
    return {k for k in ra.keys() | rb.keys() if ra.get(k) != rb.get(k)}


def _defaults() -> dict:
    """Each recipe field's default: what a recipe written before the field existed trained with."""
    from harness.config import Recipe

    out = {}
    for f in dataclasses.fields(Recipe):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return json.loads(json.dumps(out, default=str))  # lists where the record holds lists


def also_differ(a_run_dir: str, b_run_dir: str) -> list[str]:
    """The recipe fields in which the models of two runs differ beyond their named recipes' own difference (a field
    one record lacks counts as its default)."""
    ra, rb = json.loads(_recipe(str(a_run_dir))), json.loads(_recipe(str(b_run_dir)))
    if not ra or not rb:
        return []
    defaults = _defaults()
    ra, rb = {**defaults, **ra}, {**defaults, **rb}
    differ = {k for k in ra.keys() | rb.keys() if k not in IGNORED and ra.get(k) != rb.get(k)}
    return sorted(differ - _catalog_difference(ra.get("name"), rb.get("name")))


def text(fields: list[str]) -> str:
    return f"these models also differ in: {', '.join(fields)}" if fields else ""
