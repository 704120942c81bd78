"""The prompt contract: a list of segments, each an image or a text, in any order and number.

``[Image("q1", px), "Question: What colour is it? Answer:"]`` is a zero-shot VQA prompt; a k-shot
prompt puts k solved examples, each with its own image, in front. Training, VQA, captioning and
naming all go through this one type.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessError

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


def check_template(template: str, allowed: tuple[str, ...], where: str) -> None:
    """A prompt template may only use ``{name}`` for the allowed names (``{{``/``}}`` for braces)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        bad = next((name for name in names if name not in allowed), None)
        if bad is None:
            template.format(**{name: "x" for name in allowed})
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise HarnessError(
            f"{where}: bad template {template!r:.80} ({exc}); write literal braces as {{{{ }}}}"
        ) from None
    if bad is not None:
        placeholders = ", ".join("{" + name + "}" for name in allowed)
        raise HarnessError(f"{where}: unknown placeholder {{{bad}}} in {template!r:.80} (allowed: {placeholders})")
