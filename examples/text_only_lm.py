"""A model of your own, as the harness sees it: a language model that reads only the text of a prompt.

It is the "no vision at all" row beside the harness's blacked-out-image rows: what the LM answers from
the question (and the few-shot answers) alone. Evaluate it with any task, shots and table::

    harness run --task easyvqa --model examples/text_only_lm.py:TextOnlyLM --set lm=smollm2-135m --images real

``lm`` is an LM of the harness's catalogue (`harness list lms`) or a folder saved by save_pretrained. The
class implements the interface of harness/models/api.py: ``generate`` (required), ``loglikelihood``,
``context_length``, ``prompt_lengths``, ``identity`` and ``to`` (optional).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from harness.prompt import Image


class TextOnlyLM:
    name = "text-only-lm"

    def __init__(self, lm: str = "smollm2-135m", separator: str = " ") -> None:
        from harness import registry
        from harness.models import lms

        if Path(lm).is_dir():
            resolved = lms.resolve(registry.LMS.get("gpt2"), local_path=lm)  # any causal LM folder
        else:
            resolved = lms.resolve(registry.LMS.get(lm))
        self.lm, self.tokenizer = lms.load(resolved)
        self.tokenizer.padding_side = "left"
        self.separator = separator  # what stands where an image was
        self._identity = {"lm": resolved.identity, "separator": separator}
        self.name = f"text-only-{Path(lm).name}"

    def to(self, device: torch.device) -> TextOnlyLM:
        self.lm.to(device)
        return self

    def identity(self) -> dict:
        return self._identity

    def _texts(self, prompts: Sequence[list]) -> list[str]:
        return ["".join(self.separator if isinstance(s, Image) else s for s in p).strip() for p in prompts]

    def _encode(self, texts: list[str]) -> dict:
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        rows = [bos + ids for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        return {"input_ids": ids.to(self.lm.device), "attention_mask": mask.to(self.lm.device)}

    @torch.no_grad()
    def generate(self, prompts, max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        inputs = self._encode(self._texts(prompts))
        out = self.lm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                               pad_token_id=self.tokenizer.pad_token_id)  # fmt: skip
        return self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    @torch.no_grad()
    def loglikelihood(self, prompts, continuations: Sequence[str]) -> list[float]:
        scores = []
        for text, continuation in zip(self._texts(prompts), continuations):  # one at a time: plain and exact
            inputs = self._encode([text])
            cont = torch.tensor([self.tokenizer(continuation, add_special_tokens=False)["input_ids"]],
                                device=self.lm.device)  # fmt: skip
            ids = torch.cat([inputs["input_ids"], cont], 1)
            logits = self.lm(input_ids=ids).logits[0, inputs["input_ids"].shape[1] - 1 : -1].float()
            scores.append(torch.log_softmax(logits, -1).gather(-1, cont[0].unsqueeze(-1)).sum().item())
        return scores

    def context_length(self) -> int | None:
        value = getattr(self.lm.config, "max_position_embeddings", None) or getattr(self.lm.config, "n_positions", None)
        return value if isinstance(value, int) else None

    def prompt_lengths(self, prompts) -> list[int]:
        return [int(m.sum()) for m in self._encode(self._texts(prompts))["attention_mask"]]
