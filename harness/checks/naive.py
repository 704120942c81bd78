"""The naive reference of ``harness bench``: what a researcher writes first, measured beside the harness's
own paths on the same inputs (and used by tests as the answer the fast paths must agree with).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.models.generate import cut_at_stop
from harness.models.prefix import VisualPrefixModel
from harness.prompt import Image, Prompt


def naive_loss(model: VisualPrefixModel, images: Sequence[torch.Tensor], captions: Sequence[str]) -> torch.Tensor:
    """The caption loss as ``transformers`` computes it from ``labels``: logits at every position, full vocabulary."""
    batch = model.embed([[Image(f"train{i}", px)] for i, px in enumerate(images)], captions)
    out = model.lm(inputs_embeds=batch.embeds, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                   labels=batch.labels)  # fmt: skip
    return out.loss


@torch.no_grad()
def naive_generate(model: VisualPrefixModel, prompt: Prompt, max_new_tokens: int, stop: Sequence[str] = ()) -> str:
    """One prompt through ``transformers``' greedy ``generate`` from its embeddings."""
    from transformers import GenerationConfig

    batch = model.embed([prompt])
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=model.eos_token_id,
        pad_token_id=model.pad_token_id, suppress_tokens=model.suppress_token_ids or None,
    )  # fmt: skip
    ids = model.lm.generate(inputs_embeds=batch.embeds, attention_mask=batch.attention_mask, generation_config=config)
    ids = ids[0].tolist()
    ids = ids[: ids.index(model.eos_token_id)] if model.eos_token_id in ids else ids
    return cut_at_stop(model.tokenizer.decode(ids, skip_special_tokens=True), stop)[0].strip()
