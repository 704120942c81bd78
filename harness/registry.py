"""Registries. LMs, encoders, recipes, tasks and sweep grids are data: YAML files shipped inside the package
(``harness/catalog``), with a user's own in ``$HARNESS_HOME/recipes`` and ``$HARNESS_HOME/tasks`` or in
folders named by ``HARNESS_RECIPES_PATH`` / ``HARNESS_TASKS_PATH`` (``os.pathsep``-separated). Data sources, task kinds, metrics and encoder weight
sources are code that registers itself (``Plugins``). Every registry lists its keys with shell-style
wildcards.

A recipe or task file may say ``base: <name>`` and give only what differs from that item: mappings
(a naming task's ``options``) merge key by key, everything else replaces. A user's item of the same name
as a built-in one shadows it (said once, on stderr), and its ``base:`` may name the item it shadows. A
user's file that cannot be read is skipped, with a line saying so, until a command uses it.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness import paths
from harness.config import GROUPS, EncoderSpec, LMSpec, Recipe, TaskConfig, from_mapping, read_yaml
from harness.errors import HarnessError, shown, unknown_name

T = TypeVar("T")
log = logging.getLogger("harness")

CATALOG = Path(__file__).resolve().parent / "catalog"

# Short names for the offline LMs; listed by `python -m harness list models`.
LM_ALIASES = {"smollm2": "smollm2-135m", "gemma3": "gemma3-270m", "qwen2.5-coder": "qwen2.5-coder-0.5b"}


class Registry(Generic[T]):
    """Items by name, loaded lazily by a loader that returns (items, files it could not read by name).

    A file that could not be read is said once (on stderr) when the registry is first used for anything
    else, and its error is raised when it is asked for by name."""

    def __init__(self, kind: str, loader: Callable[[], tuple[dict[str, T], dict[str, HarnessError]]]) -> None:
        self.kind = kind
        self._loader = loader

    def _loaded(self, asked: str | None = None) -> dict[str, T]:
        items, broken, _ = _load(self._loader)
        if asked not in broken:
            for name in sorted(broken):
                if (id(broken), name) not in _said:
                    _said.add((id(broken), name))
                    log.warning("skipping %s %s: %s", self.kind, name, broken[name])
        return items

    @property
    def items(self) -> dict[str, T]:
        return self._loaded()

    def get(self, name: str) -> T:
        items = self._loaded(name)
        broken = _load(self._loader)[1]
        if name in broken:
            raise broken[name]
        try:
            return items[name]
        except KeyError:
            raise unknown_name(self.kind, name, items) from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.items if fnmatch.fnmatchcase(n, pattern))

    def claimed(self) -> list[str]:
        """Every name a file claims, those that could not be read included: what a name may refer to."""
        items, broken, _ = _load(self._loader)
        return sorted({*items, *broken})

    def layers(self, name: str) -> list[tuple[str, dict]]:
        """The files an item is made of, from the bottom of its ``base:`` chain to its own file: (file, the
        fields that file sets). A catalog entry is one layer of its own."""
        self.get(name)  # an unknown or unreadable item says so
        return _load(self._loader)[2].get(name, [])

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


_said: set[tuple[int, str]] = set()  # files already said to be skipped, by the load that found them


@cache
def _load(loader: Callable[[], tuple[dict, dict, dict]]) -> tuple[dict, dict, dict]:
    return loader()


def _catalog(cls: type[T], filename: str) -> Callable[[], tuple[dict[str, T], dict, dict]]:
    def load() -> tuple[dict[str, T], dict, dict]:
        path = CATALOG / filename
        table = read_yaml(path)
        items = {key: from_mapping(cls, {"key": key, **entry}, f"{path} [{key}]") for key, entry in table.items()}
        return items, {}, {key: [(f"{path} [{key}]", entry)] for key, entry in table.items()}

    return load


def folders(what: str) -> list[Path]:
    """Where items of ``what`` (recipes, tasks, grids) are found, later folders shadowing earlier ones."""
    extra = [Path(p) for p in os.environ.get(f"HARNESS_{what.upper()}_PATH", "").split(os.pathsep) if p.strip()]
    return [CATALOG / what, paths.home() / what, *extra]


def named_file(what: str, name: str) -> Path | None:
    """``name`` as a file path when it is one, else the ``<name>.yaml`` of the ``what`` folders (the user's
    before the built-in ones), else None (``file_names`` then says what there is)."""
    if Path(name).is_file():
        return Path(name)
    for folder in reversed(folders(what)):
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    return None


def file_names(what: str) -> str:
    """The names of the ``what`` files there are, comma-separated."""
    return ", ".join(sorted({p.stem for f in folders(what) if f.is_dir() for p in f.glob("*.yaml")}))


def _merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


Layers = list[tuple[str, dict]]  # an item's files, its base: chain's first: (file, the fields it sets)


def _folder(cls: type[T], what: str, check: Callable[[T, str], None] | None = None,
            adjust: Callable[[Layers], dict] | None = None) -> Callable[[], tuple[dict, dict, dict]]:  # fmt: skip
    """A loader of every ``*.yaml`` in ``folders(what)``: the item's name is its file's name. ``adjust``: what the
    item is made of from its layers (``Registry.layers``), when merging them is not all (a recipe's)."""
    singular = what.rstrip("s")

    def load() -> tuple[dict[str, T], dict[str, HarnessError], dict[str, list[tuple[str, dict]]]]:
        found: dict[str, list[tuple[Path, Any]]] = {}  # name -> (file, raw mapping or the error reading it)
        for folder in folders(what):
            for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                try:
                    raw: Any = read_yaml(path)
                except HarnessError as exc:
                    raw = exc
                found.setdefault(path.stem, []).append((path, raw))

        def resolve(name: str, index: int, chain: tuple[str, ...]) -> list[tuple[str, Any]]:
            """The item's layers, its ``base:`` chain's first."""
            path, raw = found[name][index]
            if isinstance(raw, HarnessError):
                raise raw
            if not isinstance(raw, dict) or "base" not in raw:
                return [(str(path), raw)]
            base = raw["base"]
            if not isinstance(base, str) or base not in found or (base == name and index == 0):
                raise HarnessError(f"{path}: base: {base!r} is not another {singular}")
            below = index - 1 if base == name else len(found[base]) - 1  # the item shadowed, or the base's top
            if f"{base}#{below}" in chain:
                raise HarnessError(f"{path}: base: {base!r} goes round in a circle ({' -> '.join(chain)})")
            parent = resolve(base, below, (*chain, f"{base}#{below}"))
            if not isinstance(parent[-1][1], dict):
                raise HarnessError(f"{parent[-1][0]}: expected a mapping of fields, got {type(parent[-1][1]).__name__}")
            return [*parent, (str(path), {k: v for k, v in raw.items() if k != "base"})]

        items: dict[str, T] = {}
        broken: dict[str, HarnessError] = {}
        layers: dict[str, list[tuple[str, dict]]] = {}
        for name, versions in found.items():
            path = versions[-1][0]
            if len(versions) > 1:
                log.warning("note: %s %s in %s shadows the one in %s", singular, name, path, versions[-2][0])
            try:
                chain = resolve(name, len(versions) - 1, (f"{name}#{len(versions) - 1}",))
                data = chain[0][1]
                for _, raw in chain[1:]:
                    data = _merge(data, raw)
                if all(isinstance(raw, dict) for _, raw in chain):
                    layers[name] = chain
                    data = adjust(chain) if adjust is not None else data
                if isinstance(data, dict):
                    data = {"name": name, **data}
                item = from_mapping(cls, data, str(path))
                if getattr(item, "name", name) != name:
                    raise HarnessError(f"{path}: name '{item.name}' must equal the file name '{name}'")
                if check is not None:
                    check(item, str(path))
                items[name] = item
            except HarnessError as exc:
                broken[name] = exc
        return items, broken, layers

    return load


def _check_task(task: TaskConfig, where: str) -> None:
    """A task's kind, metric and kind options exist."""
    from harness.kinds.base import KINDS, kind_of
    from harness.metrics.base import METRICS

    if task.kind not in KINDS:
        raise HarnessError(f"{where}: unknown kind '{task.kind}' (known: {', '.join(KINDS.names())})")
    if task.metric and task.metric not in METRICS:
        raise HarnessError(f"{where}: {unknown_name('metric', task.metric, METRICS.names())}")
    if task.question_types and not kind_of(task).takes_question_types:
        raise HarnessError(f"{where}: question_types is for vqa tasks, not {task.kind} tasks")
    try:
        kind_of(task).check_options(task)
    except HarnessError as exc:
        raise HarnessError(f"{where}: {exc}") from None


# Recipe fields whose meaning depends on the training text: they apply to caption targets. A recipe that trains on
# other text (train_text: vqa) does not inherit them from a base trained on captions; set by its own file (or a file
# based on it) or by --set, they stay.
CAPTION_ONLY = ("aux_embed",)
DEFAULT = "default"  # the origin of a field no file sets: the Recipe dataclass's default
SET = "--set"


def _provenance(layers: list[tuple[str, dict]]) -> dict[str, tuple[Any, str]]:
    """The fields the layers set: {field: (value, the last layer that set it)}, a caption-only field inherited from
    below the layer that sets another train_text dropped to 0 (its origin says why)."""
    out: dict[str, tuple[Any, str]] = {}
    level: dict[str, int] = {}
    for i, (origin, raw) in enumerate(layers):
        for key, value in raw.items():
            below = out.get(key, (None, ""))[0]
            out[key] = (_merge(below, value) if isinstance(value, dict) and isinstance(below, dict) else value, origin)
            level[key] = i
    text, text_origin = out.get("train_text", ("captions", DEFAULT))
    if text != "captions":
        for key in CAPTION_ONLY:
            if key in out and out[key][0] and level[key] < level["train_text"]:
                value, origin = out[key]
                out[key] = (0.0, f"dropped: {key} {value} of {origin} is for caption targets, and {text_origin} "
                            f"sets train_text: {text}")  # fmt: skip
    return out


def _recipe_data(layers: list[tuple[str, dict]]) -> dict:
    return {key: value for key, (value, _) in _provenance(layers).items()}


def recipe_provenance(name: str, overrides: dict[str, Any] | None = None) -> dict[str, tuple[Any, str]]:
    """Every field of recipe ``name`` (or of a model ``<lm>-<recipe>``'s) with ``--set`` ``overrides``: {field:
    (value, origin)}, the origin a recipe file (the last of its ``base:`` chain that sets the field), ``"--set"``,
    ``"default"`` (the Recipe dataclass's), or ``"dropped: ..."`` for a caption-only field not carried over to
    training on other text (``CAPTION_ONLY``). Loads nothing but recipe files."""
    recipe_name = name if name in RECIPES.claimed() else parse_model_name(name).recipe.name
    overrides = dict(overrides or {})
    groups = [f"lr_{g}" for g in GROUPS]
    for key in overrides:
        if key.startswith("lr_") and key not in Recipe.__dataclass_fields__:
            raise HarnessError(f"--set {key}: unknown parameter group '{key[3:]}' (the groups: {', '.join(groups)})")
    layers = [*RECIPES.layers(recipe_name), *([(SET, overrides)] if overrides else [])]
    found = _provenance(layers)
    where = f"--set for recipe '{recipe_name}'" if overrides else layers[-1][0]
    recipe = from_mapping(Recipe, {"name": recipe_name, **{k: v for k, (v, _) in found.items()}}, where)
    origin = {key: at for key, (_, at) in found.items()}
    origin["name"] = f"the file name ({layers[-1 - bool(overrides)][0]})"
    return {f: (getattr(recipe, f), origin.get(f, DEFAULT)) for f in Recipe.__dataclass_fields__}


def resolve_recipe(name: str, overrides: dict[str, Any] | None = None) -> Recipe:
    """Recipe ``name`` with ``--set`` ``overrides``, a caption-only field dropped as ``recipe_provenance`` says."""
    if not overrides:
        return RECIPES.get(name)
    return Recipe(**{key: value for key, (value, _) in recipe_provenance(name, overrides).items()})


LMS: Registry[LMSpec] = Registry("LM", _catalog(LMSpec, "lms.yaml"))
ENCODERS: Registry[EncoderSpec] = Registry("encoder", _catalog(EncoderSpec, "encoders.yaml"))
RECIPES: Registry[Recipe] = Registry("recipe", _folder(Recipe, "recipes", adjust=_recipe_data))
TASKS: Registry[TaskConfig] = Registry("task", _folder(TaskConfig, "tasks", _check_task))


@dataclass(frozen=True)
class ModelName:
    """A model name ``<lm>-<recipe>`` split into its registry entries."""

    name: str
    lm: LMSpec
    recipe: Recipe


def parse_model_name(name: str) -> ModelName:
    """``smollm2-135m-frozen`` / ``smollm2-frozen`` / ``gpt2-train-blind`` -> (LM, recipe)."""
    for recipe_name in sorted(RECIPES.claimed(), key=len, reverse=True):
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
