"""Cells and the one loop over them. A cell is one model evaluated on one task as run, under one setting
(shots, image condition, seed, limit). ``run`` and ``eval``, ``sweep`` and ``check`` each build a list of
cells and hand it to ``run_cells``, which trains or loads each model once, evaluates its cells in order
(every cell an ordinary, resumable run), and says how far it has got.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness import distributed
from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.evaluate import EvalSettings, evaluate, run_folder
from harness.kinds.base import kind_of
from harness.records import RunRecord

log = logging.getLogger("harness")


@dataclass(frozen=True)
class Cell:
    spec: Any  # a ModelSpec (a model this harness trains) or an ExternalSpec (a model of one's own)
    task: TaskConfig  # the task as run (a naming task with the cell's inner shots)
    settings: EvalSettings
    name: str = ""  # a label of the caller's (a regression file's cell name)


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    record: RunRecord
    read_back: bool  # the run had finished before and was read back, not computed now


def expand(spec, task: TaskConfig, shots: Sequence[int], seeds: Sequence[int], images: Sequence[str], *,
           limit: int = 0, batch_size: int = 0, skip_bad_samples: bool = False) -> list[Cell]:  # fmt: skip
    """Every cell of a model on a task: shots x seeds x image conditions, each shot count as the task's kind
    means it (a naming task's are its inner shots)."""
    kind = kind_of(task)
    out = []
    for count in shots:
        run_task, support = kind.as_run(task, count)
        for seed in seeds:
            for condition in images:
                settings = EvalSettings(support, seed, condition, batch_size, limit, skip_bad_samples)
                out.append(Cell(spec, run_task, settings))
    return out


def ready(spec, device: str | None = None, progress: bool = True, lm_device_map: str | dict | None = None,
          train_missing: bool = True):  # fmt: skip
    """(model, spec) ready to evaluate: a model of one's own constructed (its spec now with its identity),
    a ``--checkpoint`` file loaded, or the harness's trained checkpoint loaded, else (``train_missing``)
    the model trained now."""
    from harness.models import loading

    if spec.external:
        from harness.models import external

        with distributed.main_first():
            return external.load(spec, device)
    if spec.weights:
        with distributed.main_first():
            return loading.load_weights_file(spec, device, lm_device_map), spec
    with distributed.main_first():  # a one-time LM conversion happens once, on rank 0
        model = loading.load_trained(spec, device, lm_device_map)
    if model is not None:
        log.info("loaded the trained checkpoint of %s (fingerprint %s)", spec.name, spec.fingerprint)
        return model, spec
    if not train_missing:
        raise HarnessError(
            f"no trained checkpoint for {spec.name} (fingerprint {spec.fingerprint}): "
            f"run `harness train --model {spec.name}` first, or `harness run`"
        )
    loading.check_trainable(spec, lm_device_map)
    from harness.train import train

    log.info("no trained checkpoint for %s (fingerprint %s): training it now", spec.name, spec.fingerprint)
    return train(spec, progress=progress, device=device), spec


def run_cells(
    cells: Sequence[Cell],
    device: str | None = None,
    progress: bool = True,
    lm_device_map: str | dict | None = None,
    train_missing: bool = True,
    on_model: Callable[[Any, Any, list[int]], None] | None = None,
) -> list[CellResult]:
    """Every cell's result, in the order given. Cells of one model run together, after the model is trained
    or loaded once; ``on_model(spec, model, indices)`` is called with each model and its cells' indices."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault((cell.spec.name, cell.spec.fingerprint), []).append(i)
    results: list[CellResult | None] = [None] * len(cells)
    done = 0
    for indices in groups.values():
        model, spec = ready(cells[indices[0]].spec, device, progress, lm_device_map, train_missing)
        if on_model is not None:
            on_model(spec, model, indices)
        for i in indices:
            cell = cells[i]
            read_back = run_folder(spec, cell.task, cell.settings.for_model(model)).metrics() is not None
            record = evaluate(model, spec, cell.task, cell.settings, progress=progress)
            results[i] = CellResult(cell, record, read_back)
            done += 1
            log.info("[%d/%d] %s %s %d-shot seed %d %s: %s %.2f%s", done, len(cells), spec.name, record.label,
                     record.shots, cell.settings.seed, cell.settings.images, record.metric, record.score,
                     " (read back)" if read_back else "")  # fmt: skip
        del model
    return results  # type: ignore[return-value]
