"""Image conditions: what the images of a prompt (the query's and every support example's) are replaced by.

- ``real``: the images themselves.
- ``black``: all-black images of the same size: does the model need an image at all?
- ``shuffled``: every image replaced by another image of its split, by a seeded derangement fixed for the
  split and the evaluation seed (so questions that share an image never get it back); for naming, by an
  image of another class. Does the model use *this* image? Only this control rules out a prefix that
  carries the answer's form rather than the picture's content.
- ``caption``: every image replaced by its reference caption as text ("A red circle."): what the LM does
  from a perfect description of the picture, the ceiling a visual prefix can approach.

No module here imports torch at import time: the tables label conditions without it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.data.types import Dataset
    from harness.kinds.base import TaskKind
    from harness.prompt import Prompt

# Every condition and its label in tables, plots and reports.
LABELS = {
    "real": "real images",
    "black": "images blacked out",
    "shuffled": "images shuffled",
    "caption": "images as text (ceiling)",
}
# Names that stand for several conditions on the command line and in grids.
GROUPS = {"both": ("real", "black"), "all": ("real", "black", "shuffled")}


def parse(choice: str, recipe_default: str | None = "real", where: str = "--images") -> list[str]:
    """``real``, ``both`` (real and black), ``all`` (real, black and shuffled), ``recipe`` (the recipe's
    default) or a comma list such as ``real,shuffled``: the conditions in order, each once. ``recipe_default``
    None: ``recipe`` is kept as it is, for ``with_recipe`` once the model is known."""
    out: list[str] = []
    for part in (p.strip() for p in choice.split(",")):
        names = GROUPS.get(part) or ((recipe_default or part,) if part == "recipe" else (part,))
        for name in names:
            if name not in LABELS and not (name == "recipe" and recipe_default is None):
                known = ", ".join([*LABELS, *GROUPS, "recipe"])
                raise HarnessError(f"{where}: unknown image condition '{part}' (known: {known})")
            if name not in out:
                out.append(name)
    return out


def with_recipe(conditions: Sequence[str], recipe_default: str) -> list[str]:
    """Conditions parsed with ``recipe`` kept (``parse``), ``recipe`` now the model's default, each once."""
    return list(dict.fromkeys(recipe_default if name == "recipe" else name for name in conditions))


def label(condition: str) -> str:
    return LABELS.get(condition, condition)


def derangement(keys: Sequence[str], seed: str) -> dict[str, str]:
    """A seeded permutation of ``keys`` that moves every key: one cycle through a shuffled order."""
    order = sorted(set(keys))
    if len(order) < 2:
        raise HarnessError(f"the shuffled-image control needs at least 2 images, got {len(order)}")
    random.Random(seed).shuffle(order)
    return {key: order[(i + 1) % len(order)] for i, key in enumerate(order)}


def other_class(classes: dict[str, list[str]], seed: str) -> dict[str, str]:
    """Every image of ``classes`` mapped to an image of another class, one to one: the images, grouped by
    class in a seeded order, each take the image as many places on as the largest class has images."""
    rng = random.Random(seed)
    groups = [sorted(set(keys)) for _, keys in sorted(classes.items()) if keys]
    for group in groups:
        rng.shuffle(group)
    rng.shuffle(groups)
    order = [key for group in groups for key in group]
    owner = {key: i for i, group in enumerate(groups) for key in group}
    shift = max((len(g) for g in groups), default=0)
    if len(order) < 2 * shift or len(owner) != len(order):
        raise HarnessError("the shuffled-image control for naming needs no class with more than half of the images "
                           "and no image in two classes")  # fmt: skip
    return {key: order[(i + shift) % len(order)] for i, key in enumerate(order)}


def stand_ins(condition: str, kind: TaskKind, task: TaskConfig, dataset: Dataset, seed: int) -> dict[str, str] | None:
    """What stands in for each image under ``condition``: another image's key (``shuffled``, from the task's
    kind), its caption (``caption``), or nothing to look up (``real``, ``black``)."""
    if condition == "shuffled":
        return kind.stand_ins(task, dataset, seed)
    if condition == "caption":
        texts: dict[str, str] = {}
        pairs = [(c.image, c.text) for captions in dataset.captions.values() for c in captions]
        for image, text in [*pairs, *dataset.descriptions.items()]:  # a caption first, else a description
            text = text.strip()
            texts.setdefault(image, text[:1].upper() + text[1:])
        return texts
    return None


def apply(condition: str, prompt: Prompt, dataset: Dataset, mapping: dict[str, str] | None = None) -> Prompt:
    """``prompt`` under ``condition``, with ``stand_ins``' mapping for ``shuffled`` and ``caption``."""
    from harness.prompt import Image, blacked_out

    if condition in ("real", "black"):
        return prompt if condition == "real" else blacked_out(prompt)
    out: Prompt = []
    for segment in prompt:
        if not isinstance(segment, Image):
            out.append(segment)
        elif mapping is None or segment.key not in mapping:
            what = "other image to stand in for it" if condition == "shuffled" else "caption to give it as text"
            why = _no_text_why(dataset, segment.key) if condition == "caption" else ""
            raise HarnessError(
                f"--images {condition}: image '{segment.key}' of dataset {dataset.name} has no {what}{why}"
            )
        elif condition == "shuffled":
            shown = mapping[segment.key]
            out.append(Image(shown, dataset.image(shown)))
        else:
            out.append(mapping[segment.key])
    return _as_prose(out) if condition == "caption" else out


def _as_prose(prompt: Prompt) -> Prompt:
    """Adjacent texts of a prompt as one text, a space between two that would otherwise touch ("A cat." and
    "This is a dax." read "A cat. This is a dax."): a caption stands in for an image, and the text after an image
    starts without a space, so that glued together the LM would read "A cat.This is a dax.", text it never saw."""
    out: Prompt = []
    for segment in prompt:
        if out and isinstance(segment, str) and isinstance(out[-1], str):
            before = out.pop()
            touching = before and segment and not before[-1].isspace() and not segment[0].isspace()
            segment = before + (" " if touching else "") + segment
        out.append(segment)
    return out


def _no_text_why(dataset: Dataset, key: str) -> str:
    """Why an image of a class folder has no text: its class's name is not words (a WordNet id)."""
    from harness.data.naming_text import class_description

    owner = next((name for name, keys in dataset.classes.items() if key in keys), None)
    if owner is None or class_description(owner):
        return ""
    return f" (its class folder name '{owner}' is not words, so it gives no description)"
