"""Tasks: a TaskConfig's rows, its prompts and its scoring. Kind-specific code lives here once.

Only the "vqa" kind exists so far: ``[img] "Question: {q} Answer:"`` prompts, k solved examples in
front for k-shot, and the official VQA accuracy.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Sequence

from harness import data, paths
from harness.config import TaskConfig
from harness.data import Dataset, Row
from harness.errors import HarnessError
from harness.metrics import vqa
from harness.prompt import Image, Prompt

KINDS = ("vqa",)


def fingerprint(task: TaskConfig, dataset: Dataset) -> str:
    return paths.fingerprint({"task": dataclasses.asdict(task), "data": dataset.version})


def rows(task: TaskConfig, dataset: Dataset) -> list[Row]:
    """The evaluation rows: the whole split, or a subset fixed by the task's version."""
    if task.kind not in KINDS:
        raise HarnessError(f"task {task.name}: unknown kind '{task.kind}' (known: {', '.join(KINDS)})")
    all_rows = dataset.rows(task.split)
    if not all_rows:
        raise HarnessError(f"task {task.name}: split '{task.split}' of {dataset.name} is empty")
    if task.subsample and task.subsample < len(all_rows):
        chosen = sorted(random.Random(f"{task.name}|v{task.version}").sample(range(len(all_rows)), task.subsample))
        return [all_rows[i] for i in chosen]
    return list(all_rows)


def load(task: TaskConfig) -> Dataset:
    return data.load(task.source)


def reference_answer(row: Row) -> str:
    """The answer written into a solved support example: the most common human answer."""
    return Counter(row.answers).most_common(1)[0][0]


def build_prompt(task: TaskConfig, dataset: Dataset, row: Row, support: Sequence[Row]) -> Prompt:
    prompt: Prompt = []
    for shot in support:
        prompt.append(Image(shot.image, dataset.image(shot.image)))
        prompt.append(task.shot_prompt.format(question=shot.question, answer=reference_answer(shot)))
    prompt.append(Image(row.image, dataset.image(row.image)))
    prompt.append(task.prompt.format(question=row.question))
    return prompt


def score(task: TaskConfig, prediction: str, row: Row) -> float:
    if task.normalize_prediction:
        prediction = vqa.normalize_answer(prediction)
    return vqa.vqa_accuracy(prediction, row.answers)


def summarize(scores: Sequence[float], rows: Sequence[Row]) -> dict:
    """Overall and per answer type, rounded like the official script."""
    return {
        "accuracy": vqa.aggregate(scores),
        "per_answer_type": vqa.aggregate_by_type(scores, [r.answer_type for r in rows]),
        "per_question_type": vqa.aggregate_by_type(scores, [r.question_type or r.answer_type for r in rows]),
    }
