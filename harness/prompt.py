"""The prompt contract: a list of segments, each an image or a text, in any order and number.

``[Image("q1", px), "Question: What colour is it? Answer:"]`` is a zero-shot VQA prompt; a k-shot
prompt puts k solved examples, each with its own image, in front. Training, VQA, captioning and
naming all go through this one type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where needed, so that commands reading results start without torch
    import torch


@dataclass(frozen=True, eq=False)
class Image:
    """An image segment: ``key`` names it in logs and samples; ``pixels`` is uint8, H x W x 3."""

    key: str
    pixels: torch.Tensor


@dataclass(frozen=True)
class Target:
    """A text segment that the training loss counts (training prompts only: ``harness.models.objectives``)."""

    text: str


Segment = Image | str
Prompt = list[Segment]  # a training prompt may hold Target segments too


def describe(prompt: Prompt) -> str:
    """The prompt as text, images shown by key: what samples.jsonl records and `show` prints."""
    return "".join(f"<image:{s.key}>" if isinstance(s, Image) else s for s in prompt)


def blacked_out(prompt: Prompt) -> Prompt:
    """The same prompt with every image replaced by an all-black one of the same size."""
    import torch

    return [Image(s.key, torch.zeros_like(s.pixels)) if isinstance(s, Image) else s for s in prompt]
