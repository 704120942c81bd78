"""How a batch of prompts becomes answers: greedy text, each distinct prompt generated once and out of memory
halving the batch, or the most likely of a query's candidate answers (ranking)."""

from __future__ import annotations

import logging

import torch

from harness.config import TaskConfig
from harness.data.types import Row
from harness.errors import HarnessError
from harness.kinds.base import TaskKind
from harness.models import api
from harness.results.rundir import RunDir

log = logging.getLogger(__name__)


def prompt_key(prompt) -> tuple:
    """A prompt's content: its texts, and its images by a digest of their pixels (not their names, so the
    blacked-out images of a run are all one image)."""
    import hashlib

    from harness.prompt import Image

    return tuple(
        ("image", tuple(s.pixels.shape), hashlib.blake2b(s.pixels.contiguous().numpy().data, digest_size=16).digest())
        if isinstance(s, Image) else ("text", s)
        for s in prompt
    )  # fmt: skip


def answer(model: api.HarnessModel, prompts: list, task: TaskConfig, run: RunDir, fit: list[int],
            answered: dict[tuple, str]) -> list[str]:  # fmt: skip
    """Answers in order, generating only prompts whose content has not been answered earlier in the run:
    greedy answers depend on the prompt alone, and a blacked-out condition repeats few distinct questions."""
    keys = [prompt_key(p) for p in prompts]
    new = list({k: p for k, p in zip(keys, prompts) if k not in answered}.items())
    if new:
        answered.update(zip([k for k, _ in new], generate_fitting(model, [p for _, p in new], task, run, fit)))
    return [answered[k] for k in keys]


def rank(model: api.HarnessModel, kind: TaskKind, rows: list[Row], prompts: list, batch_size: int) -> list[str]:
    """Answers by ranking: each query's answer is the candidate of its kind (the first on a tie) whose tokens,
    after a space that follows the query prompt (" ... This is a"), have the highest summed log-likelihood."""
    pairs = [(i, name) for i, row in enumerate(rows) for name in kind.candidates(row)]
    scores: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        with api.guarded(model, "loglikelihood"):
            scores += model.loglikelihood([prompts[i] for i, _ in chunk], [f" {name}" for _, name in chunk])
    best: dict[int, tuple[float, str]] = {}
    for (i, name), score in zip(pairs, scores):
        if i not in best or score > best[i][0]:
            best[i] = (score, name)
    return [best[i][1] for i in range(len(rows))]


def generate_fitting(
    model: api.HarnessModel, prompts: list, task: TaskConfig, run: RunDir, fit: list[int]
) -> list[str]:
    """Generate in chunks of ``fit[0]``; out of memory halves it (for the rest of the run, noted in
    the run's events.jsonl) and the same prompts go again. Answers do not depend on the batch. Every
    answer is cut at the task's first stop string and stripped, whoever generated it."""
    from harness.models.generate import cut_at_stop

    out: list[str] = []
    while len(out) < len(prompts):
        chunk = prompts[len(out) : len(out) + fit[0]]
        try:
            with api.guarded(model, "generate", passing=(torch.OutOfMemoryError,)):
                answers = model.generate(chunk, task.max_new_tokens, task.stop)
            if len(answers) != len(chunk) or not all(isinstance(a, str) for a in answers):
                raise HarnessError(f"model {api.model_name(model)}: generate returned {len(answers)} answers for "
                                   f"{len(chunk)} prompts (expected one str per prompt)")  # fmt: skip
            out += [cut_at_stop(a, task.stop)[0].strip() for a in answers]
        except torch.OutOfMemoryError:
            if fit[0] == 1:
                raise HarnessError(f"out of memory generating one answer for task {task.name}: the model "
                                   "does not fit this device; try another --device") from None  # fmt: skip
            fit[0] //= 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("out of memory: generation batch halved to %d (noted in %s)", fit[0], run.events_path)
            run.event({"event": "out_of_memory", "stage": "generate", "batch_size_now": fit[0]})
    return out
