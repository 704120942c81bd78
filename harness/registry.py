"""Registries of LMs, encoders, recipes and tasks: key = name, listing with shell-style wildcards.

The tables are data: ``harness/catalog/*.yaml`` for LMs and encoders, ``baselines/recipes/*.yaml``
for recipes and ``tasks/*.yaml`` for tasks. A user adds a recipe or task by dropping a YAML file into
those folders or into ``$HARNESS_HOME/recipes`` / ``$HARNESS_HOME/tasks``.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Generic, TypeVar

from harness import paths
from harness.config import EncoderSpec, LMSpec, Recipe, TaskConfig, from_mapping, load_yaml, read_yaml
from harness.errors import HarnessError, shown, unknown_name

T = TypeVar("T")

CATALOG = Path(__file__).resolve().parent / "catalog"

# Short names for the offline LMs; listed by `python -m harness list models`.
LM_ALIASES = {"smollm2": "smollm2-135m", "gemma3": "gemma3-270m", "qwen2.5-coder": "qwen2.5-coder-0.5b"}


class Registry(Generic[T]):
    """Items by name, loaded lazily from a loader function."""

    def __init__(self, kind: str, loader: Callable[[], dict[str, T]]) -> None:
        self.kind = kind
        self._loader = loader

    @property
    def items(self) -> dict[str, T]:
        return _load(self._loader)

    def get(self, name: str) -> T:
        try:
            return self.items[name]
        except KeyError:
            raise unknown_name(self.kind, name, self.items) from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.items if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


@cache
def _load(loader: Callable[[], dict]) -> dict:
    return loader()


def _catalog(cls: type[T], filename: str) -> Callable[[], dict[str, T]]:
    def load() -> dict[str, T]:
        path = CATALOG / filename
        table = read_yaml(path)
        return {key: from_mapping(cls, {"key": key, **entry}, f"{path} [{key}]") for key, entry in table.items()}

    return load


def _folder(cls: type[T], repo_folder: str, home_folder: str) -> Callable[[], dict[str, T]]:
    def load() -> dict[str, T]:
        found: dict[str, T] = {}
        for folder in (paths.REPO_ROOT / repo_folder, paths.home() / home_folder):
            for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                item = load_yaml(cls, path, name=path.stem)
                if item.name != path.stem:
                    raise HarnessError(f"{path}: name '{item.name}' must equal the file name '{path.stem}'")
                found[item.name] = item
        return found

    return load


LMS: Registry[LMSpec] = Registry("LM", _catalog(LMSpec, "lms.yaml"))
ENCODERS: Registry[EncoderSpec] = Registry("encoder", _catalog(EncoderSpec, "encoders.yaml"))
RECIPES: Registry[Recipe] = Registry("recipe", _folder(Recipe, "baselines/recipes", "recipes"))
TASKS: Registry[TaskConfig] = Registry("task", _folder(TaskConfig, "tasks", "tasks"))


@dataclass(frozen=True)
class ModelName:
    """A model name ``<lm>-<recipe>`` split into its registry entries."""

    name: str
    lm: LMSpec
    recipe: Recipe


def parse_model_name(name: str) -> ModelName:
    """``smollm2-135m-frozen`` / ``smollm2-frozen`` / ``gpt2-train-blind`` -> (LM, recipe)."""
    for recipe_name in sorted(RECIPES.names(), key=len, reverse=True):
        suffix = f"-{recipe_name}"
        if name.endswith(suffix):
            lm_key = name[: -len(suffix)]
            lm_key = LM_ALIASES.get(lm_key, lm_key)
            if lm_key in LMS:
                return ModelName(name, LMS.get(lm_key), RECIPES.get(recipe_name))
            raise unknown_name("LM", lm_key, [*LMS.names(), *LM_ALIASES])
    # No recipe suffix: if the name starts with a known LM (or alias), the rest is a mistyped recipe.
    lm_keys = sorted([*LMS.names(), *LM_ALIASES], key=len, reverse=True)
    lm_key = next((k for k in lm_keys if name.startswith(f"{k}-") and len(name) > len(k) + 1), None)
    if lm_key is not None:
        recipe_error = unknown_name("recipe", name[len(lm_key) + 1 :], RECIPES.names())
        raise HarnessError(f"unknown model {shown(name)}: {recipe_error}")
    close = difflib.get_close_matches(name, model_names(), n=3, cutoff=0.5)
    if close:
        raise HarnessError(f"unknown model {shown(name)}; did you mean {', '.join(close)}?")
    lms, recipes = ", ".join([*LMS.names(), *LM_ALIASES]), ", ".join(RECIPES.names())
    raise HarnessError(
        f"unknown model {shown(name)}: expected <lm>-<recipe> with an LM of {lms} and a recipe of {recipes}"
    )


def model_names(pattern: str = "*") -> list[str]:
    names = [f"{lm}-{r}" for lm in [*LMS.names(), *LM_ALIASES] for r in RECIPES.names()]
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))
