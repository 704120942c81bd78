"""Sweeps: tasks x models x shots x seeds (x image conditions) from one grid file.

Each model is trained once (or loaded) and shared across its tasks; every cell is an ordinary run,
so cells already done are read back from their run records and a killed sweep resumes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from harness import registry
from harness.config import from_mapping, load_yaml, replace_fields
from harness.errors import HarnessError
from harness.tasks import RANKED, naming_label

log = logging.getLogger("harness")


@dataclass(frozen=True)
class Grid:
    name: str
    tasks: tuple[str, ...]
    models: tuple[str, ...] = ()
    shots: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    images: tuple[str, ...] = ("real", "black")
    limit: int = 0
    set: dict = field(default_factory=dict)  # recipe overrides for every model (part of their fingerprints)
    task_set: dict = field(default_factory=dict)  # task field / naming option overrides for every task
    ways: tuple[int, ...] = ()  # naming tasks on generated episodes: each of these ways (empty: the task's own)
    batch_size: int = 0  # 0: by device
    checkpoints: tuple[dict, ...] = ()  # models with weights trained elsewhere (GridCheckpoint), beside `models`
    description: str = ""


@dataclass(frozen=True)
class GridCheckpoint:
    """One entry of a grid's ``checkpoints``: ``--checkpoint`` for a sweep."""

    model: str  # the <lm>-<recipe> model whose shape the weights have
    checkpoint: str  # a safetensors file, relative to the grid file's folder
    set: dict = field(default_factory=dict)  # recipe overrides over the grid's `set` (e.g. n_prefix)


def run_grid(path: Path, device: str | None = None, progress: bool = True) -> int:
    """Run every cell of the grid; returns the number of cells."""
    from harness.evaluate import EvalSettings, evaluate
    from harness.models import external, resolve
    from harness.train import ready

    grid = load_yaml(Grid, path, name=path.stem)
    tasks = [registry.TASKS.get(t) for t in grid.tasks]  # every name checked before any training
    # `set` changes the recipes of the harness's own models; a model of your own takes none.
    specs = [resolve(m, {} if external.is_external(m) else grid.set) for m in grid.models]
    for i, item in enumerate(grid.checkpoints, 1):
        where = f"{path} checkpoints entry {i}"
        entry = from_mapping(GridCheckpoint, item, where)
        try:
            specs.append(resolve(entry.model, {**grid.set, **entry.set}, checkpoint=str(path.parent / entry.checkpoint)))
        except HarnessError as exc:
            raise HarnessError(f"{where}: {exc}") from None
    if not specs:
        raise HarnessError(f"{path}: no models and no checkpoints")
    cells = 0
    for spec in specs:
        model, spec = ready(spec, device, progress)
        for run_task, support_shots in _task_cells(grid, tasks, path):
            for seed in grid.seeds:
                for images in grid.images:
                    settings = EvalSettings(support_shots, seed, images, grid.batch_size, grid.limit)
                    m = evaluate(model, spec, run_task, settings, progress=progress)
                    label = run_task.name
                    if m.get("ways"):
                        label = naming_label(label, m["ways"], m.get("repeats", 1), m.get("induction", False))
                    label += RANKED if m.get("answer") == "rank" else ""
                    log.info("%s %s %d-shot seed %d %s: %s %.2f", spec.name, label, m["shots"], seed, images,
                             m["metric"], m["score"])  # fmt: skip
                    cells += 1
        del model
    return cells


def _task_cells(grid: Grid, tasks: list, path: Path) -> list[tuple]:
    """(task as run, support shots) for every task x shots (x ways for naming) cell of the grid."""
    cells = []
    for task in tasks:
        if task.kind != "naming":
            run_task = replace_fields(task, grid.task_set, str(path)) if grid.task_set else task
            cells += [(run_task, shots) for shots in grid.shots]
            continue
        # A naming task's shots are Frozen's inner shots, at least 1: 0 and 1 are the same cell.
        for ways in grid.ways or (None,):
            for shots in sorted({max(s, 1) for s in grid.shots}):
                options = {**task.options, **grid.task_set, "inner_shots": shots}
                if ways is not None:
                    options["ways"] = ways
                cells.append((replace_fields(task, {"options": options}, str(path)), 0))
    return cells
