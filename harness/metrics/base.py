"""Metrics by name: each metric module registers what it scores with, and a task names one (``metric:`` in
its YAML; by default its kind's). Other packages add metrics through the ``frozen_harness.metrics``
entry-point group (the entry point names a ``Metric``).

A metric scores each sample as it is answered (``sample``), or the whole set once every answer is in
(``corpus``: captioning metrics whose weights come from all references, such as CIDEr's IDF).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.plugins import Plugins

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.data.types import Row


@dataclass(frozen=True)
class Metric:
    title: str  # the metric's name in tables and run records, e.g. "VQA accuracy"
    # (task, prediction, row) -> score in [0, 1]
    sample: Callable[[TaskConfig, str, Row], float] | None = None
    # (rows, predictions) -> (each sample's score, corpus figures in percent by name)
    corpus: Callable[[Sequence[Row], Sequence[str]], tuple[list[float], dict[str, float]]] | None = None
    # What scoring needs that is not on this machine (a program such as Java), one line each; checked before a run
    missing: Callable[[], list[str]] | None = None


METRICS: Plugins[Metric] = Plugins("metric", "frozen_harness.metrics", ("harness.metrics", "harness.kinds"))


def metric_of(task: TaskConfig) -> Metric:
    """The metric ``task`` is scored with: its own ``metric``, else its kind's."""
    from harness.kinds.base import kind_of

    return METRICS.get(task.metric or kind_of(task).metric)
