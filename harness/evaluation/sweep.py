"""Sweeps: tasks x models x shots x seeds (x image conditions) from one grid file.

Each model is trained once (or loaded) and shared across its tasks; every cell is an ordinary run,
so cells already done are read back from their run records and a killed sweep resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import conditions, registry
from harness.config import from_mapping, load_yaml
from harness.errors import HarnessError
from harness.evaluation import preflight
from harness.evaluation.cells import Cell, expand, run_cells
from harness.kinds.base import kind_of, with_options


@dataclass(frozen=True)
class Grid:
    name: str
    tasks: tuple[str, ...]
    models: tuple[str, ...] = ()
    shots: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    images: tuple[str, ...] = ("real", "black")  # image conditions, or groups: both, all (harness.conditions)
    limit: int = 0
    set: dict = field(default_factory=dict)  # recipe overrides for every model (part of their fingerprints)
    task_set: dict = field(default_factory=dict)  # task field / naming option overrides for every task
    ways: tuple[int, ...] = ()  # naming tasks on generated episodes: each of these ways (empty: the task's own)
    inner_shots: tuple[int, ...] = ()  # naming tasks: these inner shots instead of `shots` (empty: `shots`)
    # Other task options crossed like ways, for the tasks whose kind has them: {induction: [false, true]}.
    options: dict = field(default_factory=dict)
    batch_size: int = 0  # 0: by device
    checkpoints: tuple[dict, ...] = ()  # models with weights trained elsewhere (GridCheckpoint), beside `models`
    description: str = ""
    split: str = "test"  # dev or test (harness.evaluation.tasks.for_split)
    train_seeds: tuple[int, ...] = ()  # one model trained per seed (the recipe's seed); empty: the recipe's own


@dataclass(frozen=True)
class GridCheckpoint:
    """One entry of a grid's ``checkpoints``: ``--checkpoint`` for a sweep."""

    model: str  # the <lm>-<recipe> model whose shape the weights have
    checkpoint: str  # a safetensors file, relative to the grid file's folder
    set: dict = field(default_factory=dict)  # recipe overrides over the grid's `set` (e.g. n_prefix)


def grid_path(name: str) -> Path:
    """A grid file by path, or a built-in (or the user's) grid by name: ``cpu-small``."""
    found = registry.named_file("grids", name)
    if found is None:
        raise HarnessError(
            f"{name}: no such grid file, and no grid of that name (known: {registry.file_names('grids')})"
        )
    return found


def grid_cells(path: Path, split: str | None = None, train_seeds: str | None = None) -> list[Cell]:
    """Every cell of the grid file, each name checked before anything trains; ``split`` and ``train_seeds`` (as
    given on the command line) instead of the grid's own."""
    from harness.evaluation import tasks as task_registry
    from harness.evaluation.cells import train_seed_option
    from harness.evaluation.evaluate import EvalSettings
    from harness.models import external
    from harness.models.spec import resolve

    grid = load_yaml(Grid, path, name=path.stem)
    run_split = task_registry.split_option(split) if split is not None else task_registry.split_option(
        grid.split, f"{path}: split")  # fmt: skip
    seeds = train_seed_option(train_seeds) if train_seeds is not None else train_seed_option(
        grid.train_seeds or None, f"{path}: train_seeds")  # fmt: skip
    if seeds and "seed" in grid.set:
        raise HarnessError(f"{path}: train_seeds and set.seed both set the training seed: give one of them")
    images = conditions.parse(",".join(grid.images), where=f"{path}: images")
    for key, values in grid.options.items():
        if not isinstance(values, list) or not values:
            raise HarnessError(f"{path}: options.{key} must be a non-empty list of values, not {values!r}")
    tasks = [task_registry.resolve(t, grid.task_set) for t in grid.tasks]
    for key in grid.options:
        if not any(key in kind_of(t).options for t in tasks):
            raise HarnessError(f"{path}: options.{key}: no task of the grid has that option")
    entries = [from_mapping(GridCheckpoint, item, f"{path} checkpoints entry {i}")
               for i, item in enumerate(grid.checkpoints, 1)]  # fmt: skip
    # `set` changes the recipes of the harness's own models; a model of your own takes none.
    models = [preflight.Model(m, {} if external.is_external(m) else grid.set) for m in grid.models]
    preflight.require(
        tasks,
        models
        + [
            preflight.Model(
                e.model,
                {**grid.set, **e.set},
                checkpoint=str(path.parent / e.checkpoint),
                where=f"{path} checkpoints entry {i}: ",
            )
            for i, e in enumerate(entries, 1)
        ],
    )
    specs = [resolve(m, recipe_set=grid.set) for m in grid.models]
    for i, entry in enumerate(entries, 1):
        where = f"{path} checkpoints entry {i}"
        try:
            specs.append(
                resolve(entry.model, {**grid.set, **entry.set}, checkpoint=str(path.parent / entry.checkpoint))
            )
        except HarnessError as exc:
            raise HarnessError(f"{where}: {exc}") from None
    if not specs:
        raise HarnessError(f"{path}: no models and no checkpoints")
    for task in tasks:
        task_registry.check_split(task, run_split)
    base = EvalSettings(limit=grid.limit, batch_size=grid.batch_size, split=run_split)
    cells = []
    for spec in specs:
        for task in tasks:
            kind = kind_of(task)
            own = grid.inner_shots if grid.inner_shots and "inner_shots" in kind.options else grid.shots
            shots = kind.grid_shots(own)
            kind.check_shots(task, shots, f"{path}: shots")
            # A naming task on generated episodes runs each of the grid's ways (none given: the task's own),
            # crossed with each value of the grid's other options that its kind has.
            crossed = {"ways": list(grid.ways)} if grid.ways else {}
            crossed.update({k: list(v) for k, v in grid.options.items()})
            variants = [task]
            for key, values in crossed.items():
                if key in kind.options:
                    variants = [with_options(t, {key: v}, str(path)) for t in variants for v in values]
            for variant in variants:
                cells += expand(spec, variant, shots, grid.seeds, images, base, seeds if spec.trains else ())
    return cells


def run_grid(path: Path, device: str | None = None, progress: bool = True, precision: str = "auto",
             split: str | None = None, train_seeds: str | None = None) -> int:  # fmt: skip
    """Run every cell of the grid (on ``split``, for ``train_seeds``, where given), computing at ``precision``;
    returns the number of cells."""
    cells = grid_cells(path, split, train_seeds)
    return len(run_cells(cells, device, progress, precision=precision))
