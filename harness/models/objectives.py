"""Training objectives beyond Frozen's plain ``[img] caption<eos>``, chosen by the recipe (``Layout``):

- packed sequences: ``pairs`` consecutive training items make one sequence,
  ``[img] caption<sep>[img] caption<sep>...[img] caption<eos>``, with the next-token loss on every caption and
  separator (``loss_on: all``) or on the last caption only (``last``). Evaluation puts the query image deep
  inside a few-shot prompt, where plain captioning never trains the prefix to be read;
- texts between an image and its target that the loss does not count (``contexts``: a supervised recipe's
  ``Question: ... Answer:``, whose answer is the target);
- an auxiliary loss pulling each prefix vector toward the word embeddings of its target's content words
  (``aux_embed``, its weight): the prefix becomes a soft bag of caption words the LM can find anywhere in a
  prompt, not only as the first thing it continues.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from harness.prompt import Image, Prompt, Target

if TYPE_CHECKING:
    from harness.config import Recipe
    from harness.models.prefix import VisualPrefixModel

# Words that carry no content of a caption: the embedding loss pulls toward the other tokens.
STOP_WORDS = ("a", "an", "the", "of", "with", "and", "in", "on", "is", "it", ".", ",", ":", "!", "?")
TAU = 0.1  # the temperature of the embedding loss's softmax over cosine similarities


@dataclass(frozen=True)
class Layout:
    """How a training batch is laid out: items per sequence, which texts are targets, the separator, and
    the embedding loss's weight. The default is Frozen's one ``[img] caption<eos>`` per sequence."""

    pairs: int = 1
    loss_on: str = "all"
    separator: str = "\n"
    aux_embed: float = 0.0

    @classmethod
    def of(cls, recipe: Recipe) -> Layout:
        return cls(recipe.pairs, recipe.loss_on, recipe.pair_separator, recipe.aux_embed)

    @property
    def plain(self) -> bool:
        return self.pairs == 1 and not self.aux_embed


def pack(
    images: Sequence[torch.Tensor], targets: Sequence[str], contexts: Sequence[str] | None, layout: Layout
) -> tuple[list[Prompt], list[str]]:
    """Consecutive groups of ``layout.pairs`` items as prompts, and the last item's target of each (which gets
    the EOS). An earlier item's target and the separator after it are ``Target`` segments with ``loss_on: all``,
    plain text with ``last``; a context (text between an image and its target) is never a target."""
    k = layout.pairs
    if len(images) % k:
        raise ValueError(f"{len(images)} images do not make whole sequences of {k} pairs")
    contexts = contexts if contexts is not None else [""] * len(images)
    prompts, lasts = [], []
    for start in range(0, len(images), k):
        prompt: Prompt = []
        for j in range(start, start + k):
            prompt.append(Image(f"train{j}", images[j]))
            if contexts[j]:
                prompt.append(contexts[j])
            if j < start + k - 1:
                texts = [targets[j], layout.separator]
                prompt.extend([Target(t) for t in texts] if layout.loss_on == "all" else texts)
        prompts.append(prompt)
        lasts.append(targets[start + k - 1])
    return prompts, lasts


def loss(
    model: VisualPrefixModel,
    images: Sequence[torch.Tensor],
    targets: Sequence[str],
    divisor: float | None = None,
    contexts: Sequence[str] | None = None,
    image_divisor: float | None = None,
) -> torch.Tensor:
    """The packed next-token loss (summed over the target tokens and divided by ``divisor``, default their
    count), plus ``aux_embed`` times the embedding loss summed over images and divided by ``image_divisor``
    (default their count): parts of a batch then add up to the whole batch's loss."""
    layout = model.layout
    prompts, lasts = pack(images, targets, contexts, layout)
    with model.autocast():
        batch = model.embed(prompts, lasts)
        value = model.target_loss(batch, divisor)
    if layout.aux_embed:
        per_image = embedding_loss(model, batch.prefix, targets)
        value = value + layout.aux_embed * per_image.sum() / (image_divisor or len(images))
    return value


def target_tokens(tokenizer, layout: Layout, targets: Sequence[str]) -> int:
    """How many tokens ``loss`` counts for a batch's targets (in sequence order): each sequence's last target
    and its EOS, and with ``loss_on: all`` every earlier target and the separator after it."""
    ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"] if targets else []
    if layout.pairs == 1:
        return sum(len(t) + 1 for t in ids)
    separator = len(tokenizer(layout.separator, add_special_tokens=False)["input_ids"])
    total = 0
    for i, t in enumerate(ids):
        last = i % layout.pairs == layout.pairs - 1
        if last or layout.loss_on == "all":
            total += len(t) + (1 if last else separator)
    return total


def embedding_loss(model: VisualPrefixModel, prefix: torch.Tensor, targets: Sequence[str]) -> torch.Tensor:
    """Per image: each prefix vector's cosine similarities to the whole vocabulary, over ``TAU``, as a softmax;
    minus the log of its probability mass on the target's content tokens (stop words left out), averaged over
    the vectors (``prefix``: images x n_prefix x width, in the order of ``targets``). Always in fp32, outside
    any autocast: over ``TAU`` the similarities span +-10, where bf16's 8 bits of mantissa moved the loss by
    several percent."""
    with torch.autocast(prefix.device.type, enabled=False):
        unit = unit_vocabulary(model)
        logp = torch.log_softmax(F.normalize(prefix.float(), dim=-1) @ unit.T / TAU, dim=-1)  # images x n_prefix x V
    stop = stop_ids(model.tokenizer)
    out = []
    for i, tokens in enumerate(model.tokenizer(list(targets), add_special_tokens=False)["input_ids"]):
        content = [t for t in tokens if t not in stop] or list(tokens)
        out.append(-torch.logsumexp(logp[i][:, content], dim=-1).mean())
    return torch.stack(out)


def unit_vocabulary(model: VisualPrefixModel) -> torch.Tensor:
    """The LM's input embeddings scaled to unit length, in fp32: computed once while they do not train (kept on
    the model, keyed by the weight's storage and version), at every call where they do (a finetuned LM)."""
    weight = model.lm.get_input_embeddings().weight
    if weight.requires_grad:
        return F.normalize(weight.float(), dim=-1)
    key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
    cached = getattr(model, "_unit_vocabulary", None)
    if cached is None or cached[0] != key:
        cached = (key, F.normalize(weight.detach().float(), dim=-1))
        model._unit_vocabulary = cached
    return cached[1]


@functools.cache
def stop_ids(tokenizer) -> frozenset[int]:
    """The ids of the stop words that are one token, with and without a leading space."""
    out = set()
    for word in STOP_WORDS:
        for text in (word, " " + word):
            tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(tokens) == 1:
                out.add(tokens[0])
    return frozenset(out)
