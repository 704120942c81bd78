"""Captioning: ``[img] "A picture of"`` (the prompt is part of the task), k solved captions in front.

A query is an image with its reference captions: the source's own caption rows, or its training-style
captions grouped by image. Scored over the whole set by pycocoevalcap after its PTB tokenizer (BLEU,
METEOR, ROUGE-L, CIDEr); a sample's score is its image's CIDEr, known only once every caption is in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.kinds.base import KINDS, TaskKind
from harness.metrics.base import METRICS, Metric
from harness.metrics.caption import java_missing

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.data.types import Dataset, Row


def caption_rows(dataset: Dataset, split: str) -> list[Row]:
    """Caption references per image: the source's own rows, or its captions grouped by image."""
    from harness.data.types import Row

    given = dataset.splits.get(split)
    if given and given[0].answer_type == "caption":
        return given
    by_image: dict[str, list[str]] = defaultdict(list)
    for caption in dataset.captions.get(split, []):
        by_image[caption.image].append(caption.text)
    return [Row(id=image, image=image, answers=tuple(refs), answer_type="caption") for image, refs in by_image.items()]


class Caption(TaskKind):
    name = "caption"
    metric = "cider"
    baselines = ("copy_last",)  # every shown caption differs: the majority of the shots is the last one

    def rows(self, task: TaskConfig, dataset: Dataset, seed: int) -> list[Row]:
        return caption_rows(dataset, task.split)

    def support_pool(self, task: TaskConfig, dataset: Dataset) -> list[Row]:
        return caption_rows(dataset, task.support_split)


def _cider(rows: Sequence[Row], predictions: Sequence[str]) -> tuple[list[float], dict[str, float]]:
    """Each image's CIDEr, and pycocoevalcap's corpus metrics in percent."""
    from harness.metrics.caption import score_captions, score_per_image

    references = {r.id: list(r.answers) for r in rows}
    candidates = dict(zip((r.id for r in rows), predictions))
    corpus = score_captions(references, candidates)
    per_image = score_per_image(references, candidates)
    return [per_image[r.id]["CIDEr"] for r in rows], {k: round(100 * v, 2) for k, v in corpus.items()}


KINDS.add("caption", Caption())
METRICS.add("cider", Metric("CIDEr", corpus=_cider, missing=java_missing))
