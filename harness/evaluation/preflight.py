"""Pre-flight: everything the cells of a command need, checked before anything trains, loads or is written, and
every missing piece named in one message (``require``); ``harness doctor`` prints the same checks as a checklist.

What is checked, cheaply (no model or weights loaded, no data read):

* a writable harness home;
* each task's data: every file and folder its source reads (``Source.missing``), or its hub copy;
* each task's metric: what scoring runs (Java for the caption metrics, ``Metric.missing``);
* each of the harness's own models: its LM (hub cache, installed GGUF package or ``--lm-path`` folder), its
  encoder's weights, and its recipe's training data (``train_data`` and ``train_mix``: their versions are part of
  the model's fingerprint, so they are read even when the trained checkpoint is there), and a ``--checkpoint`` file;
* a model of one's own: its Python file, or its ``hf:`` folder or hub id (in the hub cache, or the hub answers).

A name that is wrong (an unknown task, model or ``--set`` field) is not a missing piece: it is left to the
command, which says so in its own words.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths, registry
from harness.config import TaskConfig, parse_overrides
from harness.errors import HarnessError, Missing


@dataclass(frozen=True)
class Model:
    """A model as a command names it, before it is resolved (resolving reads the LM and the training data)."""

    name: str  # as --model takes it
    overrides: dict = field(default_factory=dict)  # --set (a model of one's own: constructor arguments)
    lm_path: str | None = None
    checkpoint: str | None = None  # --checkpoint: a weights file trained elsewhere
    where: str = ""  # where it was named, in front of its lines (a baseline file's cell)


@dataclass
class Check:
    """One thing needed: what it is, what is missing of it (one line each; none: ready), what is here."""

    what: str
    problems: list[str]
    here: str
    needed_by: list[str] = field(default_factory=list)


def model_of(args: argparse.Namespace) -> Model:
    """The model of a command's --model, --set, --lm-path and --checkpoint."""
    return Model(args.model, parse_overrides(getattr(args, "overrides", [])), getattr(args, "lm_path", None),
                 getattr(args, "checkpoint", None))  # fmt: skip


def require(tasks: Iterable[TaskConfig | str], models: Iterable[Model]) -> None:
    """Raise one HarnessError naming everything missing for these tasks and models (one line for one piece)."""
    problems = list(dict.fromkeys(p for check in checks(tasks, models) for p in check.problems))
    if len(problems) == 1:
        raise HarnessError(problems[0])
    if problems:
        raise Missing(problems)


def checks(tasks: Iterable[TaskConfig | str], models: Iterable[Model], home: bool = True) -> list[Check]:
    """Every check for these tasks and models, each thing once (with who needs it)."""
    found: dict[str, Check] = {}

    def add(
        what: str, by: str, problems: Callable[[], list[str]], here: Callable[[], str] = lambda: "nothing missing"
    ) -> None:
        if what not in found:
            missing = problems()
            found[what] = Check(what, missing, "" if missing else here())
        if by and by not in found[what].needed_by:
            found[what].needed_by.append(by)

    if home:
        add("harness home", "", _home_missing, lambda: str(paths.home()))
    for task in tasks:
        if isinstance(task, str):
            if task not in registry.TASKS:
                continue  # an unknown name: the command says so
            task = registry.TASKS.get(task)
        _task_checks(task, add)
    for model in models:
        _model_checks(model, add)
    return list(found.values())


def _home_missing() -> list[str]:
    try:
        paths.check_home(write=True)
    except HarnessError as err:
        return [str(err)]
    return []


def _task_checks(task: TaskConfig, add) -> None:
    from harness.data import sources
    from harness.metrics.base import metric_of

    by = f"task {task.name}"
    if task.hub:
        dataset_id = str(task.hub.get("dataset_id", ""))
        add(f"hub dataset {dataset_id}", by, lambda: _table_missing(dataset_id, task.name), lambda: "here or reachable")
    else:
        add(f"data source {task.source}", by, lambda: _source_missing(task.source),
            lambda: sources.sources()[task.source].available())  # fmt: skip
    try:
        metric = metric_of(task)
    except HarnessError:
        return  # an unknown metric: the task's run says so
    if metric.missing is not None:
        add(f"{metric.title} scoring", by, metric.missing)


def _source_missing(name: str) -> list[str]:
    from harness.data import sources

    try:
        return sources.missing(name)
    except HarnessError as err:  # an unknown source
        return [str(err)]


def _table_missing(dataset_id: str, task: str) -> list[str]:
    """A task's hub copy: a folder written by save_to_disk, or a hub dataset in a cache or reachable now."""
    from huggingface_hub.constants import HF_HOME, HF_HUB_CACHE

    from harness.models.lms import hub_reachable

    local = Path(dataset_id).expanduser()
    if local.is_dir():
        return []
    if dataset_id.startswith((".", "/", "~")) or dataset_id.count("/") != 1:
        return [f"task {task}: hub.dataset_id {dataset_id}: no such folder (a folder written by save_to_disk, or a "
                "hub id owner/name)"]  # fmt: skip
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE") or Path(HF_HOME) / "datasets")
    owner, name = dataset_id.split("/")
    if (Path(HF_HUB_CACHE) / f"datasets--{owner}--{name}").is_dir() or (datasets_cache / f"{owner}___{name}").is_dir():
        return []
    if hub_reachable():
        return []
    return [f"task {task}: hub dataset {dataset_id} is not on this machine (hub cache {HF_HUB_CACHE}, datasets cache "
            f"{datasets_cache}) and the hub cannot be reached: download it where there is network (`hf download "
            f"--repo-type dataset {dataset_id}`) and copy it into the hub cache, or save it with save_to_disk and set "
            "the task's hub.dataset_id to that folder"]  # fmt: skip


def _model_checks(model: Model, add) -> None:
    from harness.models import encoders, external, lms

    if external.is_external(model.name):
        add(f"model {model.name}", model.name, lambda: _external_missing(model), lambda: "here")
        return
    try:
        parsed = registry.parse_model_name(model.name)
        recipe = registry.resolve_recipe(parsed.recipe.name, model.overrides)  # as the model resolves it
        encoder = registry.ENCODERS.get(recipe.encoder)
    except HarnessError:
        return  # a wrong name or --set: resolving the model says so
    by = f"{parsed.lm.key}-{parsed.recipe.name}"
    if model.checkpoint:
        path = Path(model.checkpoint)
        add(f"weights file {path}", by, lambda: [] if path.is_file() else [
            f"{model.where}--checkpoint {path}: no such file (the weights trained elsewhere, a .safetensors "
            "file)"], lambda: str(path.resolve()))  # fmt: skip
    if model.lm_path:
        add(f"LM folder {model.lm_path}", by, lambda: lms.missing(parsed.lm, model.lm_path), lambda: model.lm_path)
    else:
        add(f"LM {parsed.lm.key}", by, lambda: lms.missing(parsed.lm), lambda: lms.availability(parsed.lm))
    add(f"encoder {encoder.key} weights", by, lambda: encoders.missing(encoder))
    for name in [recipe.train_data, *(source for source, _ in recipe.mix())]:
        add(f"data source {name}", f"{by} (training data)", lambda name=name: _source_missing(name),
            lambda name=name: _source_here(name))  # fmt: skip


def _source_here(name: str) -> str:
    from harness.data import sources

    return sources.sources()[name].available()


def _external_missing(model: Model) -> list[str]:
    """A model of one's own: its Python file, or its hf: folder (config.json and safetensors) or hub id."""
    from harness.models import external, lms

    where = model.where
    if model.name.startswith("hf:"):
        source = model.name[3:]
        folder = Path(source)
        if not source:
            return []  # resolving says what is wrong
        if not folder.is_dir():
            revision = model.overrides.get("revision")
            return lms.hub_missing(source, revision, f"{where}model hf:{source}", "a local folder (--model hf:DIR)")
        if not (folder / "config.json").is_file():
            return [f"{where}--model hf:{source}: no config.json there (expected a folder saved by save_pretrained)"]
        if not any(folder.glob("*.safetensors")):
            return [f"{where}--model hf:{source}: no safetensors weights there (pickled .bin files are not loaded)"]
        return []
    found = external._file_and_class(model.name)
    if found is not None and not found[0].is_file():
        return [f"{where}--model {model.name}: no file {found[0]} (the Python file that defines {found[1]})"]
    return []


def doctor(task_names: Sequence[str], model_names: Sequence[str]) -> tuple[str, int]:
    """(the checklist, how many things are missing) for the tasks and models named; none named: every one."""
    from tabulate import tabulate

    everything = not task_names and not model_names
    tasks = [registry.TASKS.get(t) for t in task_names] or (registry.TASKS.names() if everything else [])
    for name in model_names:
        from harness.models import external

        if not external.is_external(name):
            registry.parse_model_name(name)  # an unknown name is one line, here as anywhere
    names = list(model_names) or ([n for n in registry.model_names() if _canonical(n)] if everything else [])
    rows, missing = [], 0
    for check in checks(tasks, [Model(n) for n in names]):
        needed = _listed(check.needed_by)
        if not check.problems:
            rows.append([check.what, "ready", needed, check.here])
        for problem in check.problems:
            rows.append([check.what, "MISSING", needed, problem])
            missing += 1
    table = tabulate(rows, headers=["what", "status", "needed by", "here / what is missing and how to get it"],
                     tablefmt="github", disable_numparse=True)  # fmt: skip
    return table, missing


def _canonical(name: str) -> bool:
    parsed = registry.parse_model_name(name)
    return name == f"{parsed.lm.key}-{parsed.recipe.name}"


def _listed(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
