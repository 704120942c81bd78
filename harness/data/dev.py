"""The dev split of a data source: what tuning is measured on, disjoint from the test queries and from every
image a recipe trains on.

- A source with an official validation split that its tasks do not test on names it (``Dataset.dev_split``):
  COCO's Karpathy val, a hub copy whose mapping has a ``dev`` split. Nothing trains on it already.
- Every other source with a training split (easy-vqa, emoji, Tux Paint, the tiny twins, VQAv2 and OK-VQA, whose
  official val is what their tasks test on) sets a seeded part of its training images apart (``dev_images``):
  ``DEV_FRACTION`` of them, at least ``DEV_MIN`` (but no more than a quarter for that), ranked by a sha256 of
  ``DEV_SEED`` and the image key, so the choice does not depend on the order the source lists its images.
  No training reads them (``harness.training.trainset`` leaves them out, and ``holdout_tag`` puts the rule
  into the training data's version, so a checkpoint trained before they were set apart is never reused), and
  a dev cell's few-shot support never shows them.
- A source with neither (class folders, Frozen's released episodes, a hub copy of one split) has no dev split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

from harness.data.types import Caption, Dataset, Row
from harness.errors import HarnessError

DEV = "dev"
TRAIN = "train"
DEV_FRACTION = 0.1
DEV_MIN = 20
DEV_SEED = "dev-1"

_HELD: dict[tuple[str, str], frozenset[str]] = {}
_VIEWS: dict[tuple[str, str], Dataset] = {}


def training_images(dataset: Dataset) -> list[str]:
    """Every image of the source's training split: its rows' and its training captions' (sorted)."""
    rows = dataset.splits.get(TRAIN, [])
    return sorted({r.image for r in rows} | {c.image for c in dataset.captions.get(TRAIN, [])})


def carves(dataset: Dataset) -> bool:
    """Whether the source's dev split is a part of its training images (no official one, a training split)."""
    return not dataset.dev_split and bool(training_images(dataset))


def dev_size(n: int) -> int:
    """How many of ``n`` training images are set apart: a tenth, and at least DEV_MIN where that is at most a
    quarter of them."""
    return max(math.ceil(DEV_FRACTION * n), min(DEV_MIN, n // 4))


def dev_images(dataset: Dataset) -> frozenset[str]:
    """The training images set apart for dev (none where the source has an official dev split)."""
    key = (dataset.name, dataset.version)
    if key not in _HELD:
        images = training_images(dataset) if carves(dataset) else []
        ranked = sorted(images, key=lambda k: hashlib.sha256(f"{DEV_SEED}|{k}".encode()).digest())
        _HELD[key] = frozenset(ranked[: dev_size(len(ranked))])
    return _HELD[key]


def holdout_tag(dataset: Dataset) -> str:
    """What a model trained on ``dataset`` adds to its training data's version: the rule that set dev images apart
    (empty where none are: an official dev split)."""
    return f"-dev:{DEV_SEED}:{DEV_FRACTION}:{DEV_MIN}" if carves(dataset) else ""


def dev_view(dataset: Dataset) -> Dataset:
    """``dataset`` as a dev cell sees it: a ``dev`` split (rows and captions) with the dev queries, every other
    split without the dev images, and ``held_out`` naming them (for the naming protocol's episodes)."""
    if DEV in dataset.splits or DEV in dataset.captions:
        return dataset
    key = (dataset.name, dataset.version)
    if key in _VIEWS:
        return _VIEWS[key]
    if dataset.dev_split:
        official = dataset.dev_split
        if official not in dataset.splits and official not in dataset.captions:
            raise HarnessError(f"data source {dataset.name}: its dev split '{official}' is not there")
        splits = {**dataset.splits, DEV: dataset.splits.get(official, [])}
        captions = {**dataset.captions, DEV: dataset.captions.get(official, [])}
        view = dataclasses.replace(dataset, splits=splits, captions=captions)
    elif carves(dataset):
        held = dev_images(dataset)
        splits = _parted(dataset.splits, held)
        captions = _parted(dataset.captions, held)
        view = dataclasses.replace(dataset, splits=splits, captions=captions, held_out=held)
    else:
        raise HarnessError(
            f"data source {dataset.name} has no dev split: no official validation split apart from its test, and "
            "no training images to set a part of apart (use --split test, or tune on another task)"
        )
    view.images = dataset.images  # one cache of decoded images for both
    _VIEWS[key] = view
    return view


def _parted(by_split: dict[str, list], held: frozenset[str]) -> dict[str, list]:
    """Splits without the held images, and the training split's held rows (or captions) as ``dev``."""
    out: dict[str, list[Row] | list[Caption]] = {
        s: [x for x in xs if x.image not in held] for s, xs in by_split.items()
    }
    if TRAIN in by_split:
        out[DEV] = [x for x in by_split[TRAIN] if x.image in held]
    return out
