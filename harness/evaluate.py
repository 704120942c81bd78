"""The evaluator: task rows -> prompts (with seeded few-shot support) -> batched generation -> scores.

Samples are written as they finish; a rerun of the same run fingerprint skips what is done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tqdm import tqdm

from harness import paths, stats, tasks
from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.fewshot import draw_support
from harness.models import ModelSpec
from harness.models.prefix import VisualPrefixModel
from harness.prompt import blacked_out, describe
from harness.results import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSettings:
    shots: int = 0
    seed: int = 0
    images: str = "real"  # "real" | "black"
    batch_size: int = 32

    def describe(self) -> dict:
        # batch_size is left out: it changes nothing in the answers.
        return {"shots": self.shots, "seed": self.seed, "images": self.images}


# Bumped when samples.jsonl or metrics.json change shape, so old run records are never misread.
RECORD_FORMAT = 2


def run_folder(spec: ModelSpec, task: TaskConfig, settings: EvalSettings) -> RunDir:
    dataset = tasks.load(task)
    key = paths.fingerprint(
        {
            "model": spec.fingerprint,
            "task": tasks.fingerprint(task, dataset),
            "settings": settings.describe(),
            "format": RECORD_FORMAT,
        }
    )
    return RunDir(paths.home() / "runs" / task.name / spec.name / key)


def evaluate(
    model: VisualPrefixModel, spec: ModelSpec, task: TaskConfig, settings: EvalSettings, progress: bool = True
) -> dict:
    """Evaluate (resuming if interrupted) and return metrics; a finished run is read back, not redone."""
    run = run_folder(spec, task, settings)
    if (done := run.metrics()) is not None:
        return done
    dataset = tasks.load(task)
    rows = tasks.rows(task, dataset)
    if settings.shots and task.kind == "naming":
        raise HarnessError(f"task {task.name}: a naming episode brings its own support; its --shots are inner_shots")
    pool = tasks.support_pool(task, dataset) if settings.shots else []
    run.start(
        {
            "task": task.name,
            "task_version": task.version,
            "task_fingerprint": tasks.fingerprint(task, dataset),
            "model": spec.describe(),
            "settings": settings.describe(),
            "n": len(rows),
        }
    )
    finished = {s["id"]: s for s in run.finished_samples()}
    todo = [r for r in rows if r.id not in finished]
    if finished:
        log.info("resuming %s: %d of %d samples already done", run.folder, len(finished), len(rows))
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"eval {task.name}", disable=not progress)
    for start in range(0, len(todo), settings.batch_size):
        batch = todo[start : start + settings.batch_size]
        prompts = [
            tasks.build_prompt(task, dataset, r, draw_support(task.name, settings.seed, r, pool, settings.shots))
            for r in batch
        ]
        if settings.images == "black":
            prompts = [blacked_out(p) for p in prompts]
        predictions = model.generate(prompts, task.max_new_tokens, task.stop)
        samples = [
            {
                "id": r.id,
                "prompt": describe(p),
                "prediction": pred,
                "references": list(r.answers),
                "score": tasks.score(task, pred, r),
                "answer_type": r.answer_type,
                "question_type": r.question_type,
            }
            for r, p, pred in zip(batch, prompts, predictions)
        ]
        run.append(samples)
        finished.update((s["id"], s) for s in samples)
        bar.update(len(batch))
    bar.close()
    extra = {}
    if task.kind == "caption":
        scores, extra = tasks.score_corpus(task, rows, [finished[r.id]["prediction"] for r in rows])
        for r, value in zip(rows, scores):
            finished[r.id]["score"] = value
        run.rewrite_samples(finished[r.id] for r in rows)
    else:
        scores = [finished[r.id]["score"] for r in rows]
    low, high = stats.bootstrap_ci(scores)
    metrics = {
        **tasks.summarize(task, scores, rows),
        **extra,
        "n": len(rows),
        "ci95": [round(100 * low, 2), round(100 * high, 2)],
        "task": task.name,
        "model": spec.name,
        "model_fingerprint": spec.fingerprint,
        **settings.describe(),
        "run_dir": str(run.folder),
    }
    run.write_metrics(metrics)
    return metrics
