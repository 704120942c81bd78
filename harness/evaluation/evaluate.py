"""The evaluator: one cell (a model, a task as run, its settings) -> prompts with seeded few-shot
support -> batched answers -> scores -> a run record. It asks the task's kind (``harness.kinds``) for
rows, prompts and summaries and the task's metric for scores; it never asks which kind it is.

Samples are written as they finish; a rerun of the same run fingerprint skips what is done.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from harness import conditions, distributed, locks
from harness.config import TaskConfig
from harness.data.types import Row
from harness.errors import BadImage, HarnessError
from harness.evaluation import answering, baselines, tasks
from harness.evaluation.fewshot import draw_support
from harness.kinds.base import TaskKind, kind_of
from harness.metrics import stats
from harness.metrics.base import metric_of
from harness.models import api
from harness.prompt import describe
from harness.results.database import ResultsDB
from harness.results.records import RunRecord
from harness.results.rundir import RunDir

if TYPE_CHECKING:
    from harness.evaluation.cells import PreparedCell

log = logging.getLogger(__name__)


# The evaluation batch by device, when none is given: a batch is generated together and then recorded
# (a killed run loses at most the batch in progress). A decode step reads every weight whatever the rows,
# so a few rows pay it per few answers, while too many fall out of a CPU's caches; GPUs want hundreds of
# rows to fill. Out of memory halves the batch. How these were chosen: docs/speed.md.
DEFAULT_BATCH = {"cpu": 128, "cuda": 512}


def default_batch_size(model) -> int:
    """The evaluation batch for where ``model`` runs (its ``device``; CUDA if it has none and CUDA is here)."""
    try:
        device_type = torch.device(model.device).type
    except (AttributeError, TypeError, RuntimeError):  # a model of one's own need not say where it runs
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return DEFAULT_BATCH.get(device_type, DEFAULT_BATCH["cpu"])


@dataclass(frozen=True)
class EvalSettings:
    shots: int = 0
    seed: int = 0
    images: str = "real"  # an image condition: real, black, shuffled or caption (harness.conditions)
    batch_size: int = 0  # prompts per batch; 0: by device (default_batch_size)
    limit: int = 0  # 0: every row; N: the first N rows only, a quick look marked partial everywhere
    skip_bad_samples: bool = False  # a query whose image cannot be read is skipped and counted, not an error
    precision: str = ""  # set (by ``for_model``) where the model computes at other than its device's old default
    split: str = ""  # "dev": the task's dev split (``tasks.for_split``); "": its test split

    def __post_init__(self) -> None:
        for name, what in (("batch_size", "prompts per batch, 0: by device"), ("limit", "0: every query")):
            if getattr(self, name) < 0:
                raise HarnessError(f"invalid {name} = {getattr(self, name)!r} ({what})")
        if self.split not in ("", "dev"):
            raise HarnessError(f"invalid split = {self.split!r} (dev, or empty for test)")
        if self.images not in conditions.LABELS:
            raise HarnessError(f"invalid images = {self.images!r} (one of: {', '.join(conditions.LABELS)})")

    def describe(self) -> dict:
        # batch_size is left out: it changes nothing in the answers.
        described = {"shots": self.shots, "seed": self.seed, "images": self.images, "limit": self.limit}
        if self.skip_bad_samples:  # only when set: earlier run fingerprints stay valid
            described["skip_bad_samples"] = True
        if self.precision:  # likewise: other floats, other answers, another run
            described["precision"] = self.precision
        if self.split:  # likewise: a dev run is another run; a test run keeps its fingerprint
            described["split"] = self.split
        if self.images == "caption":  # captions now read as prose (conditions._as_prose): older runs are not these
            described["caption_text"] = "prose"
        return described

    def for_model(self, model) -> EvalSettings:
        """These settings with the model's precision where it is not what its device always computed at (fp32
        on a CPU, bf16 on CUDA): a bf16 run on a CPU is another run than an fp32 one."""
        from harness.precision import LEGACY

        chosen = getattr(model, "precision", "")
        device = getattr(getattr(model, "device", None), "type", "cpu")
        if not chosen or chosen == LEGACY.get(device, "fp32"):
            return self
        return dataclasses.replace(self, precision=chosen)


def limit_option(value: int | None) -> int:
    """``--limit`` as given on the command line: left out, every query (0); 0 or below is refused."""
    if value is None:
        return 0
    if value < 1:
        raise HarnessError(f"--limit expects how many queries to evaluate, 1 or more (leave it out for all of them), "
                           f"got {value}")  # fmt: skip
    return value


# Bumped when samples.jsonl or metrics.json change shape or meaning (3: naming episodes drawn by the
# evaluation seed), so old run records are never misread or reused.
RECORD_FORMAT = 3


def evaluate(model: api.HarnessModel, cell: PreparedCell, progress: bool = True, order: str = "given") -> RunRecord:
    """Evaluate the prepared cell (``harness.evaluation.cells``: its task, data, rows and settings as run, resolved once for
    this model), resuming if interrupted, and return the run record; a finished run is read back, not redone.
    ``order``: the order the queries are answered in (given, reversed, shuffled), which must change nothing.

    One process at a time evaluates a run folder (rank 0 of a launch of several speaks for them): another
    process asking for the same run waits for it, then reads it back."""
    run = cell.run_dir()
    with locks.held(run.folder, enabled=distributed.is_main()):
        return _evaluate(model, cell, run, progress, order)


def _evaluate(model: api.HarnessModel, cell: PreparedCell, run: RunDir, progress: bool, order: str) -> RunRecord:
    if (done := distributed.broadcast(run.metrics())) is not None:
        if distributed.is_main():
            _index(run)  # idempotent: a run finished before the database existed gets its row
        return RunRecord.from_json(done)
    spec, task, dataset, settings = cell.source, cell.task, cell.dataset, cell.settings
    kind = kind_of(task)
    all_rows = cell.all_rows
    rows = cell.rows
    if settings.shots and kind.own_support:
        raise HarnessError(f"task {task.name}: its queries bring their own support; its --shots are inner_shots")
    pool = tasks.support_pool(task, dataset) if settings.shots else []
    priors = baselines.type_priors(kind, pool)  # the type_prior baseline's answer by question type
    stand_ins = cell.stand_ins
    mode = kind.answer_mode(task)
    if mode == "rank" and not callable(getattr(model, "loglikelihood", None)):
        raise HarnessError(f"task {task.name} with answer=rank ranks answers by log-likelihood: model {spec.name} "
                           "has no loglikelihood(prompts, continuations) method")  # fmt: skip
    main = distributed.is_main()
    config = {
        "task": task.name,
        "task_version": task.version,
        "task_fingerprint": cell.task_fingerprint,
        "task_config": dataclasses.asdict(task),
        "data_version": dataset.version,  # what tells runs of one task on other data apart in the tables
        "model": spec.describe(),
        "settings": settings.describe(),
        "n": len(rows),
    }
    computed = {k: getattr(model, k) for k in ("precision", "precision_reason") if getattr(model, k, "")}
    if main:
        run.start(config, computed)
    # Rank 0 alone reads and writes the run record; the other ranks learn from it what is left to do.
    finished = {s["id"]: s for s in run.resume()} if main else {}
    done_ids = distributed.broadcast(set(finished))
    todo = _ordered([r for r in rows if r.id not in done_ids], order, task.name)
    if done_ids:
        log.info("resuming %s: %d of %d samples already done", run.folder, len(done_ids), len(rows))
    size = settings.batch_size or default_batch_size(model)
    mine, n_batches = distributed.shard(todo, size)
    fit = [size]  # the generation batch that fits in memory, halved on out-of-memory
    answered: dict[tuple, str] = {}  # prompt content -> answer: a prompt seen before is not generated again
    bar = tqdm(
        total=len(rows), initial=len(rows) - len(todo), desc=f"eval {task.name}", disable=not (progress and main)
    )
    for start in range(0, n_batches * size, size):
        batch, prompts, supports, skipped = _prompts(task, dataset, mine[start : start + size], pool, settings,
                                                     stand_ins)  # fmt: skip
        _check_context(model, kind, task, dataset, batch, prompts, pool, settings)
        if not batch:
            predictions = []
        elif mode == "rank":
            predictions = answering.rank(model, kind, batch, prompts, size)
        else:
            predictions = answering.answer(model, prompts, task, run, fit, answered)
        samples = [
            {
                "id": r.id,
                "prompt": describe(p),
                "prediction": pred,
                "references": list(r.answers),
                "score": tasks.score(task, pred, r),
                "answer_type": r.answer_type,
                "question_type": r.question_type,
                **baselines.stored(task, r, support, priors),  # what the prompt alone would score
            }
            for r, p, support, pred in zip(batch, prompts, supports, predictions)
        ] + skipped
        for part in distributed.gather(samples) or []:  # every rank's batch, on rank 0
            run.append(part)
            finished.update((s["id"], s) for s in part)
            bar.update(len(part))
    bar.close()
    if not main:
        return distributed.broadcast(None)
    base = {
        "task": task.name,
        "model": spec.name,
        "model_fingerprint": spec.fingerprint,
        "model_family": spec.family,
        "train_seed": spec.train_seed,
        **settings.describe(),
        "run_dir": str(run.folder),
        "partial": len(rows) < len(all_rows),
        **kind.record(task, dataset, settings.shots),
        **computed,
    }
    base["task_label"] = kind.label(task.name, base)
    _check_complete(run, rows)
    scored = [r for r in rows if "skipped" not in finished[r.id]]
    if len(scored) < len(rows):
        reasons = [finished[r.id]["skipped"] for r in rows if "skipped" in finished[r.id]]
        if not scored:
            raise HarnessError(f"task {task.name}: every sample was skipped (first: {reasons[0]})")
        base.update(skipped=len(reasons), skipped_examples=reasons[:5])
    return distributed.broadcast(finish(run, task, scored, [finished[r.id] for r in scored], base))


def _ordered(rows: list[Row], order: str, task: str) -> list[Row]:
    """The queries in the order they are answered: as given, reversed, or shuffled (seeded): answers and
    scores must not depend on it (``harness check --invariance``)."""
    if order == "reversed":
        return rows[::-1]
    if order == "shuffled":
        import random

        return random.Random(f"order|{task}").sample(rows, len(rows))
    return rows


def _prompts(task: TaskConfig, dataset, batch: list[Row], pool: list[Row], settings: EvalSettings,
             stand_ins: dict[str, str] | None):  # fmt: skip
    """(rows kept, their prompts under the run's image condition, their support, skipped-sample records): with
    --skip-bad-samples a query whose image (or a support image) cannot be read is recorded as skipped with
    the reason; otherwise it stops the run."""
    kept, prompts, supports, skipped = [], [], [], []
    for r in batch:
        try:
            support = draw_support(task.name, settings.seed, r, pool, settings.shots)
            prompt = tasks.build_prompt(task, dataset, r, support)
            prompt = conditions.apply(settings.images, prompt, dataset, stand_ins)
        except BadImage as err:
            if not settings.skip_bad_samples:
                raise HarnessError(f"{err} (query {r.id}; --skip-bad-samples skips and counts such queries)") from None
            log.warning("skipping %s: %s", r.id, err)
            skipped.append({"id": r.id, "skipped": str(err), "references": list(r.answers)})
            continue
        kept.append(r)
        prompts.append(prompt)
        supports.append(support)
    return kept, prompts, supports, skipped


def _check_context(model: api.HarnessModel, kind: TaskKind, task: TaskConfig, dataset, rows: list[Row],
                   prompts: list, pool: list[Row], settings: EvalSettings) -> None:  # fmt: skip
    """A prompt plus its answer must fit the LM's context: else one line naming the query and how many
    support shots would fit (a longer prompt would silently run past the positions the LM was trained on)."""
    limit = api.context_length(model)
    lengths = api.prompt_lengths(model, prompts) if limit is not None and prompts else None
    if lengths is None:  # a model that does not say its context or its prompts' lengths is not checked
        return
    for row, length in zip(rows, lengths):
        if length + task.max_new_tokens <= limit:
            continue
        what = f"task {task.name}: the prompt of query {row.id} is {length} positions"
        support = draw_support(task.name, settings.seed, row, pool, settings.shots)
        fits = next((k for k in range(len(support) - 1, -1, -1) if api.prompt_lengths(
            model, [tasks.build_prompt(task, dataset, row, support[:k])])[0] + task.max_new_tokens <= limit), None)  # fmt: skip
        advice = kind.too_long(task, settings.shots, fits)
        raise HarnessError(
            f"{what} ({settings.shots} shots), and with {task.max_new_tokens} new tokens it exceeds the LM's "
            f"context of {limit}: {advice}"
        )


def _check_complete(run: RunDir, rows: list[Row]) -> None:
    """Every query answered exactly once in samples.jsonl, whatever the process count and restarts."""
    counts = Counter(s["id"] for s in run.finished_samples())
    repeated = [i for i, c in counts.items() if c > 1]
    missing = [r.id for r in rows if r.id not in counts]
    if repeated or missing:
        what = (
            f"id {repeated[0]!r} answered {counts[repeated[0]]} times"
            if repeated
            else f"no answer for id {missing[0]!r}"
        )
        raise HarnessError(f"{run.samples_path}: {what} ({len(repeated)} repeated, {len(missing)} missing)")


def finish(run: RunDir, task: TaskConfig, rows: list[Row], samples: list[dict], base: dict) -> RunRecord:
    """Score finished samples (a corpus metric over the whole set) and the no-model baselines of their prompts
    (``harness.evaluation.baselines``), write metrics.json and index the run."""
    metric = metric_of(task)
    corpus: dict[str, float] = {}
    before = [s.get("baselines") for s in samples]
    base = {**base, "baselines": baselines.score(task, rows, samples)}
    if metric.corpus is not None:
        scores, corpus = metric.corpus(rows, [s["prediction"] for s in samples])
        for sample, value in zip(samples, scores):
            sample["score"] = value
    else:
        scores = [s["score"] for s in samples]
    if metric.corpus is not None or [s.get("baselines") for s in samples] != before:
        run.rewrite_samples(samples)
    low, high = stats.bootstrap_ci(scores)
    summary = kind_of(task).summarize(task, scores, rows)
    record = RunRecord(
        **base,
        metric=metric.title,
        score=summary["score"],
        n=len(rows),
        ci95=[round(100 * low, 2), round(100 * high, 2)],
        breakdown=summary["breakdown"],
        per_question_type=summary.get("per_question_type"),
        corpus=corpus,
        events=run.events(),
        empty_answers=sum(not str(s["prediction"]).strip() for s in samples),
    )
    run.write_metrics(record.to_json())
    _index(run, replace=True)
    return record


def _index(run: RunDir, replace: bool = False) -> None:
    db = ResultsDB()
    try:
        db.index(run, replace=replace)
    finally:
        db.close()
