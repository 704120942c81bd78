"""``harness score``: a finished run's saved predictions scored again with today's metric code (no model)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.config import TaskConfig, from_mapping
from harness.data.types import Row
from harness.errors import HarnessError
from harness.evaluation.evaluate import finish
from harness.metrics.base import metric_of
from harness.results.records import RunRecord
from harness.results.rundir import RESCORE, RunDir


def rescore(folder: Path) -> tuple[RunRecord, RunRecord]:
    """Score a run's saved predictions again with today's metric code: (old record, new record)."""
    run = RunDir(folder)
    old = run.record() if run.config_path.exists() else None
    if old is None:
        raise HarnessError(f"{folder}: not a finished run (no metrics.json or config.json)")
    config = run.config()
    if not isinstance(config.get("task_config"), dict):
        raise HarnessError(f"{run.config_path}: unreadable (no 'task_config'); delete metrics.json beside it and "
                           f"{RESCORE}")  # fmt: skip
    task = from_mapping(TaskConfig, config["task_config"], f"{run.config_path} [task_config]")
    samples = [s for s in run.finished_samples() if "skipped" not in s]
    if len(samples) != old.n:
        raise HarnessError(f"{run.samples_path}: {len(samples)} samples, but the run recorded {old.n}")
    rows = [
        Row(s["id"], "", answers=tuple(s["references"]), answer_type=s.get("answer_type", ""),
            question_type=s.get("question_type", ""))
        for s in samples
    ]  # fmt: skip
    metric = metric_of(task)
    if metric.sample is not None:
        for sample, row in zip(samples, rows):
            sample["score"] = metric.sample(task, sample["prediction"], row)
        run.rewrite_samples(samples)
    measured = ("metric", "score", "n", "ci95", "breakdown", "per_question_type", "corpus", "events", "empty_answers",
                "baselines")  # fmt: skip
    base = {k: v for k, v in dataclasses.asdict(old).items() if k not in measured}
    return old, finish(run, task, rows, samples, base)
