"""Baselines that need no model: what a few-shot cell's prompts alone would score, with no image looked at.

- ``copy_last``: answer what the last solved example of the prompt answered;
- ``majority``: answer what most of the prompt's solved examples answered (a tie: the latest of the tied);
- ``type_prior``: answer the most frequent answer, among the questions of the query's question type, of the
  pool the solved examples are drawn from (its most frequent answer overall for a type it lacks); for kinds
  whose rows have question types (VQA).

The task's kind says which apply (``TaskKind.baselines``) and what a solved example answers (``shot_answers``).
Each is scored with the task's own metric against the query's references, like the model's answer. A sample
keeps what they need (``support_answers``, and ``prior_answer`` for ``type_prior``), so ``harness score``
computes them again from samples.jsonl alone; a zero-shot cell has none.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.kinds.base import TaskKind, kind_of
from harness.metrics.base import metric_of

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.data.types import Row

NAMES = ("copy_last", "majority", "type_prior")


def majority(answers: Sequence[str]) -> str:
    """The most frequent of ``answers``; among tied ones, the latest."""
    counts = Counter(answers)
    top = max(counts.values())
    return next(answer for answer in reversed(answers) if counts[answer] == top)


def _most_frequent(counts: Counter) -> str:
    """The most frequent answer; among tied ones, the first in sorted order (whatever the pool's order)."""
    return min(counts, key=lambda answer: (-counts[answer], answer))


def type_priors(kind: TaskKind, pool: Sequence[Row]) -> dict[str | None, str]:
    """Question type -> the pool's most frequent answer to questions of that type, and None -> its most frequent
    answer overall; {} where the kind has no ``type_prior`` or there is no pool."""
    if "type_prior" not in kind.baselines or not pool:
        return {}
    by_type: dict[str, Counter] = defaultdict(Counter)
    for row in pool:
        by_type[row.question_type][kind.shot_answer(row)] += 1
    priors: dict[str | None, str] = {t: _most_frequent(counts) for t, counts in by_type.items()}
    priors[None] = _most_frequent(sum(by_type.values(), Counter()))
    return priors


def stored(task: TaskConfig, row: Row, support: Sequence[Row], priors: dict[str | None, str]) -> dict[str, Any]:
    """What a new sample of query ``row`` keeps for the baselines: the answers its prompt shows, the prior answer
    of its question type, and, for a metric scored per sample, each baseline's score (``baselines``); {} for a
    prompt with no solved example."""
    kind = kind_of(task)
    shown = kind.shot_answers(row, support)
    if not shown:
        return {}
    out: dict[str, Any] = {"support_answers": list(shown)}
    if priors:
        out["prior_answer"] = priors.get(row.question_type, priors[None])
    metric = metric_of(task)
    if metric.sample is not None:
        out["baselines"] = {name: metric.sample(task, answer, row) for name, answer in answers(kind, out).items()}
    return out


def answers(kind: TaskKind, sample: dict[str, Any]) -> dict[str, str]:
    """Each baseline's answer for a sample, from what it keeps; {} where it keeps nothing for them."""
    shown = sample.get("support_answers")
    if not shown:
        return {}
    out = {"copy_last": shown[-1], "majority": majority(shown)}
    if "prior_answer" in sample:
        out["type_prior"] = sample["prior_answer"]
    return {name: out[name] for name in kind.baselines if name in out}


def score(task: TaskConfig, rows: Sequence[Row], samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Score every baseline of a finished run: each sample's ``baselines`` (name -> score, as its ``score``) set,
    and the run's figure for each returned (name -> points, summarized as the run's ``score`` is). {} where a sample
    keeps nothing for them (a zero-shot cell, or a run from before they were kept)."""
    kind = kind_of(task)
    chosen = [answers(kind, sample) for sample in samples]
    if not chosen or not all(chosen):
        return {}
    metric = metric_of(task)
    out: dict[str, float] = {}
    per_sample: list[dict[str, float]] = [{} for _ in samples]
    for name in (n for n in kind.baselines if all(n in c for c in chosen)):
        predictions = [c[name] for c in chosen]
        if metric.sample is not None:
            scores = [metric.sample(task, p, row) for p, row in zip(predictions, rows)]
        else:
            scores, _ = metric.corpus(rows, predictions)
        for mapping, value in zip(per_sample, scores):
            mapping[name] = value
        out[name] = kind.summarize(task, scores, rows)["score"]
    for sample, mapping in zip(samples, per_sample):
        sample["baselines"] = mapping
    return out
