"""What a recipe trains on: the items (image, text before the target, target) of each training step, a
function of (seed, step) alone, and the same for ``harness train`` and ``harness show --train``.

- Frozen's own data: train_data's training captions, in epochs of seeded permutations (``batch_indices``).
- ``train_text: vqa``: train_data's training-split questions instead, ``Question: {q} Answer:`` after the image
  (not a target) and the most common answer as the target (a supervised upper bound, not Frozen's training); with
  ``question_types``, only the questions of those types.
- ``pairs``: consecutive items make one training sequence (``harness.models.objectives``).
- ``train_mix``: each sequence comes from one source, drawn by share (train_data takes what the shares leave),
  its items uniformly from that source's training captions, by an RNG seeded by (seed, step). A mix source
  gives its training captions only: the emoji source keeps its twitter drawings, the naming and captioning
  queries, in its test captions, so they never train.
- ``caption_style: varied``: easy-vqa captions ("a blue circle.") reworded, a seeded draw per use.
- ``pair_repeat``: that share of sequences (a seeded draw per sequence) end on another image with the caption
  of an earlier pair of the sequence, from the same source (``repeat_last``), where the source has one.

Apart from ``train_text: vqa``, every text is a caption: no task's prompt template or question ever trains. No source's
dev images (``harness.data.dev``) ever train: every source's items leave them out.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.config import Recipe
from harness.data import dev, sources
from harness.data.shapes import COLORS, SHAPES
from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

    from harness.data.types import Dataset

VQA_CONTEXT = "Question: {question} Answer:"  # train_text: vqa, after the image; the answer follows
VQA_TARGET = " {answer}"
_SHAPE_CAPTION = re.compile(r"^a (" + "|".join(COLORS) + r") (" + "|".join(SHAPES) + r")\.$")
# Neutral wordings of an easy-vqa caption, colour and shape in both orders and apart, so the prefix has to
# serve either on its own, not only as the next words after the image.
SHAPE_VARIANTS = ("a {c} {s}.", "a {s}. it is {c}.", "the {s} is {c}.", "{c}. {s}.", "a {s}, {c}.", "{c} {s}.",
                  "colour {c}, {s}.", "a {s} in {c}.")  # fmt: skip


@dataclass(frozen=True)
class Item:
    """One image of a training sequence: its source and key, the text after it that is not a target
    (``context``), and its target text."""

    source: str
    image: str
    target: str
    context: str = ""


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The examples of training step ``step``: epochs are seeded permutations, walked in order."""
    import torch

    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return out


def variant(text: str, rng: random.Random) -> str:
    """A rewording of an easy-vqa caption ("a blue circle.") drawn from ``SHAPE_VARIANTS``; others are kept."""
    m = _SHAPE_CAPTION.match(text)
    return rng.choice(SHAPE_VARIANTS).format(c=m.group(1), s=m.group(2)) if m else text


def question_rows(recipe: Recipe, dataset: Dataset) -> list:
    """train_data's training-split questions, only those of the recipe's ``question_types`` where it names some."""
    rows = dataset.splits.get("train", [])
    return [r for r in rows if r.question_type in recipe.question_types] if recipe.question_types else rows


def check_question_types(recipe: Recipe) -> None:
    """Every type in the recipe's ``question_types`` is one that train_data's training questions have."""
    if not recipe.question_types:
        return
    known = sorted({r.question_type for r in sources.load(recipe.train_data).splits.get("train", [])} - {""})
    for name in recipe.question_types:
        if name not in known:
            raise HarnessError(f"recipe '{recipe.name}': question_types: no training question of {recipe.train_data} "
                               f"has the type '{name}' (its types: {', '.join(known) or 'none'})")  # fmt: skip


class TrainSet:
    """The recipe's training sources (train_data, then each train_mix source) and their items."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.datasets: dict[str, Dataset] = {}
        self._captions: dict[str, dict[str, list[Item]]] = {}
        main = recipe.train_data
        self.pools = [(main, self._items(main, recipe.train_text), 1.0 - sum(s for _, s in recipe.mix()))]
        self.pools += [(name, self._items(name, "captions"), share) for name, share in recipe.mix()]
        for name, items, share in self.pools:
            if not items and (share > 1e-9 or name == main):
                what = "questions" if name == main and recipe.train_text == "vqa" else "captions"
                raise HarnessError(f"training set '{name}' has no training {what}")

    def _items(self, name: str, text: str) -> list[Item]:
        dataset = self.datasets.setdefault(name, sources.load(name))
        held = dev.dev_images(dataset)  # the source's dev images: never trained on
        if text == "captions":  # the train split's captions only (an emoji source's twitter drawings are test)
            return [Item(name, c.image, c.text) for c in dataset.captions.get("train", []) if c.image not in held]
        from harness.kinds.base import reference_answer

        rows = [r for r in question_rows(self.recipe, dataset) if r.image not in held]
        return [Item(name, r.image, VQA_TARGET.format(answer=reference_answer(r)),
                     VQA_CONTEXT.format(question=r.question)) for r in rows if r.question and r.answers]  # fmt: skip

    def batch(self, step: int) -> list[Item]:
        """The whole batch of training step ``step``: batch_size items, each ``pairs`` in a row one sequence."""
        r = self.recipe
        if not r.train_mix:
            pool = self.pools[0][1]
            items = [pool[i] for i in batch_indices(len(pool), r.batch_size, r.seed, step)]
        else:
            rng = random.Random(f"train_mix|{r.seed}|{step}")
            weights = [share for _, _, share in self.pools]
            items = []
            for _ in range(r.batch_size // r.pairs):
                _, pool, _ = rng.choices(self.pools, weights=weights)[0]
                items += [pool[rng.randrange(len(pool))] for _ in range(r.pairs)]
        if r.pair_repeat and r.pairs > 1:
            items = self.repeat_last(items, step)
        if r.caption_style == "varied":
            rng = random.Random(f"caption_style|{r.seed}|{step}")
            items = [dataclasses.replace(it, target=variant(it.target, rng)) for it in items]
        return items

    def repeat_last(self, items: list[Item], step: int) -> list[Item]:
        """``items`` with a ``pair_repeat`` share of their sequences ending on a repeat: the last item replaced by
        another image (of the same source) with the caption of an earlier, randomly chosen item of the sequence.
        A sequence whose chosen caption has no other image is kept as it is."""
        r, k = self.recipe, self.recipe.pairs
        rng = random.Random(f"pair_repeat|{r.seed}|{step}")
        out = list(items)
        for start in range(0, len(out), k):
            if rng.random() >= r.pair_repeat:
                continue
            earlier = out[start + rng.randrange(k - 1)]
            others = [
                it for it in self._by_caption(earlier.source).get(earlier.target, []) if it.image != earlier.image
            ]
            if others:
                out[start + k - 1] = others[rng.randrange(len(others))]
        return out

    def _by_caption(self, source: str) -> dict[str, list[Item]]:
        """A source's training items by their caption (built once)."""
        if source not in self._captions:
            pool = next(items for name, items, _ in self.pools if name == source)
            index: dict[str, list[Item]] = {}
            for it in pool:
                index.setdefault(it.target, []).append(it)
            self._captions[source] = index
        return self._captions[source]

    def image(self, item: Item) -> torch.Tensor:
        return self.datasets[item.source].image(item.image)

    def sequences(self, n: int) -> list[list[Item]]:
        """The first ``n`` training sequences, in training order."""
        out: list[list[Item]] = []
        step, k = 0, self.recipe.pairs
        while len(out) < n and step < self.recipe.steps:
            items = self.batch(step)
            out += [items[i : i + k] for i in range(0, len(items), k)]
            step += 1
        return out[:n]


def render(sequence: list[Item], recipe: Recipe, bos: bool = False) -> str:
    """One training sequence as the model sees it: ``[img:<source>/<key>]`` where an image's prefix goes,
    targets (what the loss counts) in ``«»``, ``<eos>`` and ``<bos>`` for those tokens, newlines as ``\\n``."""
    out = "<bos>" if bos else ""
    for j, item in enumerate(sequence):
        out += f"[img:{item.source}/{item.image}]{item.context}"
        if j == len(sequence) - 1:
            out += f"«{item.target}<eos>»"
        else:
            text = item.target + recipe.pair_separator
            out += f"«{text}»" if recipe.loss_on == "all" else text
    return out.replace("\n", "\\n")
