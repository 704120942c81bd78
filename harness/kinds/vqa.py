"""Open-ended visual question answering: ``[img] "Question: {q} Answer:"``, k solved examples in front.

Scored per question with the official VQA accuracy (``harness.metrics.vqa``), overall and per answer
type and question type, rounded as the official script rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.kinds.base import KINDS, TaskKind
from harness.metrics.base import METRICS, Metric

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.data.types import Dataset, Row


class VQA(TaskKind):
    name = "vqa"
    metric = "vqa_accuracy"
    takes_question_types = True
    baselines = ("copy_last", "majority", "type_prior")

    def rows(self, task: TaskConfig, dataset: Dataset, seed: int) -> list[Row]:
        return _of_types(task, super().rows(task, dataset, seed))

    def support_pool(self, task: TaskConfig, dataset: Dataset) -> list[Row]:
        return _of_types(task, super().support_pool(task, dataset))

    def summarize(self, task: TaskConfig, scores: Sequence[float], rows: Sequence[Row]) -> dict[str, Any]:
        from harness.metrics import vqa

        return {
            "score": vqa.aggregate(scores),
            "breakdown": vqa.aggregate_by_type(scores, [r.answer_type for r in rows]),
            "per_question_type": vqa.aggregate_by_type(scores, [r.question_type or r.answer_type for r in rows]),
        }


def _of_types(task: TaskConfig, rows: list[Row]) -> list[Row]:
    """The rows of the task's ``question_types`` (every row when it names none)."""
    if not task.question_types:
        return rows
    return [r for r in rows if r.question_type in task.question_types]


def _vqa_accuracy(task: TaskConfig, prediction: str, row: Row) -> float:
    """The official accuracy; a task whose answers are already in normal form (``normalize_prediction``)
    normalises the prediction too, as the official script would only do when the answers disagree."""
    from harness.metrics import vqa

    if task.normalize_prediction:
        prediction = vqa.normalize_answer(prediction)
    return vqa.vqa_accuracy(prediction, row.answers)


KINDS.add("vqa", VQA())
METRICS.add("vqa_accuracy", Metric("VQA accuracy", sample=_vqa_accuracy))
