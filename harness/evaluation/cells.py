"""Cells and the one loop over them. A cell is one model evaluated on one task as run, under one setting
(shots, image condition, seed, limit). ``run`` and ``eval``, ``sweep`` and ``check`` each build a list of
cells and hand it to ``run_cells``, which trains or loads each model once, prepares each of its cells once
(``PreparedCell``: the task's data, rows and fingerprint, the settings as run) and evaluates them in order
(every cell an ordinary, resumable run), saying how far it has got.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness import conditions, paths
from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.evaluation.evaluate import RECORD_FORMAT, EvalSettings, evaluate
from harness.kinds.base import kind_of
from harness.models.source import ModelSource
from harness.results.records import RunRecord
from harness.results.rundir import RunDir

if TYPE_CHECKING:
    from harness.data.types import Dataset, Row

log = logging.getLogger("harness")


@dataclass(frozen=True)
class Cell:
    spec: ModelSource  # a model trained here, weights trained elsewhere, or a model of one's own
    task: TaskConfig  # the task as run (a naming task with the cell's inner shots)
    settings: EvalSettings
    name: str = ""  # a label of the caller's (a regression file's cell name)

    def prepare(self, model: Any, source: ModelSource | None = None) -> PreparedCell:
        """This cell resolved once for ``model`` (loaded from ``source``, by default the cell's): the task's data
        loaded, its rows drawn, its fingerprint taken, the settings as run (a limit that covers every query is
        the full run; the precision the model computes at, where it is not its device's old default)."""
        source = source or self.spec
        dataset = tasks.load(self.task)
        rows = tuple(tasks.rows(self.task, dataset, self.settings.seed))
        settings = self.settings
        if settings.limit and settings.limit >= len(rows):
            settings = dataclasses.replace(settings, limit=0)
        settings = settings.for_model(model)
        task_fingerprint = tasks.fingerprint(self.task, dataset)
        stand_ins = conditions.stand_ins(settings.images, kind_of(self.task), self.task, dataset, settings.seed)
        key = paths.fingerprint(
            {"model": source.fingerprint, "task": task_fingerprint, "settings": settings.describe(),
             "format": RECORD_FORMAT}
        )  # fmt: skip
        return PreparedCell(source, self.task, dataset, rows, task_fingerprint, settings, stand_ins, key, self.name)


@dataclass(frozen=True)
class PreparedCell:
    """A cell as run, resolved once and handed to ``evaluate``: nothing below derives any of it again."""

    source: ModelSource  # the model's source as loaded (a model of one's own: with its identity)
    task: TaskConfig
    dataset: Dataset
    all_rows: tuple[Row, ...]  # every query of the task as run (a naming task's: the seed's episodes)
    task_fingerprint: str
    settings: EvalSettings  # as run: the covering limit, the model's precision
    stand_ins: dict[str, str] | None  # what stands in for each image under the image condition
    key: str  # the run fingerprint: model, task, settings and record format
    name: str = ""

    @property
    def rows(self) -> list[Row]:
        """The queries evaluated: the first ``limit`` ones, or all of them."""
        return list(self.all_rows[: self.settings.limit] if self.settings.limit else self.all_rows)

    def run_dir(self) -> RunDir:
        """The run's folder in the harness home of the moment."""
        return RunDir(paths.home() / "runs" / self.task.name / self.source.folder_name / self.key)


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    record: RunRecord
    read_back: bool  # the run had finished before and was read back, not computed now


def train_seed_option(value: Any, where: str = "--train-seeds") -> tuple[int, ...]:
    """Training seeds as asked for: "0,1,2" on the command line, or a grid's list; None: the recipe's own seed."""
    if value is None:
        return ()
    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    why = f"{where} expects distinct whole numbers >= 0 (one trained model each), e.g. 0,1,2"
    if not items or any(item == "" for item in items):
        raise HarnessError(f"{why}; got {value!r}")
    seeds: list[int] = []
    for item in items:
        whole = isinstance(item, int) and not isinstance(item, bool) and item >= 0
        if not (whole or (isinstance(item, str) and item.isdigit())):
            raise HarnessError(f"{why}; got {item!r}")
        if int(item) in seeds:
            raise HarnessError(f"{why}; got {int(item)} twice")
        seeds.append(int(item))
    return tuple(seeds)


def seeded(spec: ModelSource, train_seeds: Sequence[int]) -> list[ModelSource]:
    """``spec`` once per training seed (its recipe's ``seed``: each a model trained on its own), or as it is when
    no training seeds are asked for. Only a model this harness trains has training seeds."""
    from harness.models.spec import ModelSpec

    if not train_seeds:
        return [spec]
    if not isinstance(spec, ModelSpec) or not spec.trains:
        raise HarnessError(f"--train-seeds: {spec.name} is not trained by this harness, so it has no training seed")
    return [dataclasses.replace(spec, recipe=dataclasses.replace(spec.recipe, seed=s)) for s in train_seeds]


def expand(spec: ModelSource, task: TaskConfig, shots: Sequence[int], seeds: Sequence[int], images: Sequence[str],
           base: EvalSettings | None = None, train_seeds: Sequence[int] = ()) -> list[Cell]:  # fmt: skip
    """Every cell of a model on a task: training seeds (``seeded``) x shots x seeds x image conditions, each shot
    count as the task's kind means it (a naming task's are its inner shots), on ``base``'s split (dev or test:
    ``tasks.for_split``); the rest of each cell's settings are ``base``'s."""
    kind = kind_of(task)
    base = base or EvalSettings()
    out = []
    for model in seeded(spec, train_seeds):
        for count in shots:
            run_task, support = kind.as_run(tasks.for_split(task, base.split), count)
            for seed in seeds:
                for condition in images:
                    settings = dataclasses.replace(base, shots=support, seed=seed, images=condition)
                    out.append(Cell(model, run_task, settings))
    return out


def run_cells(
    cells: Sequence[Cell],
    device: str | None = None,
    progress: bool = True,
    lm_device_map: str | dict | None = None,
    train_missing: bool = True,
    on_model: Callable[[Any, Any, list[int]], None] | None = None,
    precision: str = "auto",
) -> list[CellResult]:
    """Every cell's result, in the order given. Cells of one model run together, after the model is trained
    or loaded once (computing at ``precision``: auto, fp32 or bf16); ``on_model(spec, model, indices)`` is
    called with each model and its cells' indices."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault((cell.spec.name, cell.spec.fingerprint), []).append(i)
    results: list[CellResult | None] = [None] * len(cells)
    done = 0
    for indices in groups.values():
        model, spec = cells[indices[0]].spec.load(device, lm_device_map, progress, train_missing, precision)
        if on_model is not None:
            on_model(spec, model, indices)
        for i in indices:
            cell = cells[i].prepare(model, spec)
            read_back = cell.run_dir().metrics() is not None
            record = evaluate(model, cell, progress=progress)
            results[i] = CellResult(cells[i], record, read_back)
            done += 1
            log.info("[%d/%d] %s %s %d-shot seed %d %s: %s %.2f%s", done, len(cells), spec.name, record.label,
                     record.shots, cell.settings.seed, cell.settings.images, record.metric, record.score,
                     " (read back)" if read_back else "")  # fmt: skip
        del model
    return results  # type: ignore[return-value]
