"""Batched greedy decoding with a KV cache over left-padded prompt embeddings.

Written here rather than through ``transformers.generate`` because the prompts are embeddings with
image prefixes, position ids must skip the left padding for every LM family, and the loop is the hot
path that later gets a static cache; its semantics are small: argmax, stop at EOS or a stop string,
cut the text at the first stop string, at most ``max_new_tokens`` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.models.prefix import Embedded, VisualPrefixModel
from harness.prompt import Prompt


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The text up to the first stop string, and whether one was found.

    Leading white space is dropped first: an LM that answers "\\nblue" has answered "blue", not "".
    """
    text = text.lstrip()
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@torch.no_grad()
def greedy_generate(
    model: VisualPrefixModel, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str] = ()
) -> list[str]:
    batch = model.embed(prompts)
    hidden, cache = model.hidden_states(batch, use_cache=True)
    n = len(prompts)
    tokens = torch.empty((n, 0), dtype=torch.long, device=model.device)
    done = torch.zeros(n, dtype=torch.bool, device=model.device)
    texts = [""] * n
    mask, position = batch.attention_mask, batch.position_ids[:, -1:]
    for _ in range(max_new_tokens):
        logits = model.logits(hidden[:, -1])
        if model.suppress_token_ids:
            logits[:, model.suppress_token_ids] = float("-inf")
        next_token = logits.argmax(-1)
        next_token = torch.where(done, model.pad_token_id, next_token)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        done |= next_token == model.eos_token_id
        if stop:
            for i in (~done).nonzero().flatten().tolist():
                texts[i] = model.tokenizer.decode(tokens[i], skip_special_tokens=True)
                if cut_at_stop(texts[i], stop)[1]:
                    done[i] = True
        if bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=mask.device)], dim=1)
        position = position + 1
        step = Embedded(model.lm.get_input_embeddings()(next_token[:, None]), mask, position)
        hidden, cache = model.hidden_states(step, past_key_values=cache, use_cache=True)
    out = []
    for i in range(n):
        row = tokens[i]
        ends = (row == model.eos_token_id).nonzero()
        if len(ends):
            row = row[: ends[0, 0]]
        out.append(cut_at_stop(model.tokenizer.decode(row, skip_special_tokens=True), stop)[0].strip())
    return out
