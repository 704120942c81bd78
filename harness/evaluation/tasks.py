"""A task config, resolved: its data, its kind's rows, prompts and scores, and its fingerprint.

What differs between VQA, captioning and naming lives in ``harness.kinds``; this module asks the task's
kind and applies what every kind shares (a fixed subsample, ``--task-set`` overrides, the metric).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness import paths, registry
from harness.config import TaskConfig, replace_fields
from harness.data import dev, sources
from harness.errors import HarnessError
from harness.kinds.base import kind_of
from harness.metrics.base import metric_of

if TYPE_CHECKING:
    from harness.data.types import Dataset, Row
    from harness.prompt import Prompt

# TaskConfig fields added after run records existed: left out of a task's fingerprint while they hold their
# default, so the runs recorded before keep theirs.
_NEWER_FIELDS = {"metric": "", "question_types": ()}


def resolve(name: str, overrides: dict[str, Any] | None = None) -> TaskConfig:
    """The registered task ``name`` with ``--task-set`` overrides: a TaskConfig field, or an option of its kind."""
    task = registry.TASKS.get(name)
    if not overrides:
        return task
    fields = {k: v for k, v in overrides.items() if k in task.__dataclass_fields__}
    options = {k: v for k, v in overrides.items() if k not in fields}
    if options and not kind_of(task).options:
        raise HarnessError(f"--task-set: task {task.name} has no field '{sorted(options)[0]}'")
    if options:
        fields["options"] = {**task.options, **options}
    return replace_fields(task, fields, f"--task-set for task '{task.name}'")


SPLITS = ("dev", "test")  # what a cell evaluates on: tune on dev, report on test


def split_option(value: str | None, where: str = "--split") -> str:
    """A split as asked for (``--split``, a grid's ``split``): "dev", or "" for test (the default)."""
    if value is None or value == "test":
        return ""
    if value != dev.DEV:
        raise HarnessError(f"{where} expects dev or test, got {value!r}")
    return dev.DEV


def for_split(task: TaskConfig, split: str) -> TaskConfig:
    """The task as run on ``split`` ("dev", or "" / "test" for the task's own split): a dev task's queries are the
    source's dev split, its support the support split without the dev images (``tasks.load`` gives that view);
    a task whose support is its own test split takes a dev cell's support from the dev split instead."""
    if split_option(split or None) != dev.DEV or task.split == dev.DEV:
        return task
    support = dev.DEV if task.support_split == task.split else task.support_split
    return dataclasses.replace(task, split=dev.DEV, support_split=support)


def check_split(task: TaskConfig, split: str) -> None:
    """A dev task's queries drawn once now, so a source without a dev split is refused before anything trains."""
    if split:
        run = for_split(task, split)
        rows(run, load(run))


def fingerprint(task: TaskConfig, dataset: Dataset) -> str:
    described = dataclasses.asdict(task)
    for key, default in _NEWER_FIELDS.items():
        if described.get(key) == default:
            del described[key]
    return paths.fingerprint({"task": described, "data": dataset.version})


def load(task: TaskConfig) -> Dataset:
    """The task's data; a dev task's (``for_split``) as its dev view (``harness.data.dev.dev_view``)."""
    dataset = sources.load(task.source, task.hub or None)
    if task.split == dev.DEV:
        try:
            return dev.dev_view(dataset)
        except HarnessError as exc:
            raise HarnessError(f"task {task.name} --split dev: {exc}") from None
    return dataset


def rows(task: TaskConfig, dataset: Dataset, seed: int = 0) -> list[Row]:
    """The evaluation rows: the whole split, or a subset fixed by the task's version.

    ``seed`` draws generated naming episodes (so seeds of a naming task are different episodes);
    other kinds have fixed rows and use the seed for their few-shot support only.
    """
    all_rows = kind_of(task).rows(task, dataset, seed)
    if not all_rows:
        raise HarnessError(f"task {task.name}: split '{task.split}' of {dataset.name} is empty")
    if task.subsample and task.subsample < len(all_rows):
        chosen = sorted(random.Random(f"{task.name}|v{task.version}").sample(range(len(all_rows)), task.subsample))
        return [all_rows[i] for i in chosen]
    return list(all_rows)


def support_pool(task: TaskConfig, dataset: Dataset) -> list[Row]:
    return kind_of(task).support_pool(task, dataset)


def build_prompt(task: TaskConfig, dataset: Dataset, row: Row, support: Sequence[Row]) -> Prompt:
    return kind_of(task).prompt(task, dataset, row, support)


def score(task: TaskConfig, prediction: str, row: Row) -> float | None:
    """The per-sample score, or None for a metric scored over the whole set at the end (captions)."""
    metric = metric_of(task)
    return metric.sample(task, prediction, row) if metric.sample is not None else None
