"""The adapter for Hugging Face vision-language models that take interleaved images and text.

``--model hf:<hub id or folder>`` loads ``AutoProcessor`` and ``AutoModelForImageTextToText`` (LLaVA,
Idefics, SmolVLM, Gemma 3, Qwen2-VL, ... whatever the installed transformers maps there) and
implements ``harness.models.api``: a prompt's segments become one text, each image replaced by the
processor's image placeholder (``image_token``) in place, and the images go to the processor in the
same order; answers are greedy (``generate`` with ``do_sample=False``), cut at the task's stop strings.

Options (``--set key=value``):

- ``prompt_style``: ``raw`` (default) writes the prompt as it is, a completion, as the harness's own
  models see it; ``chat`` wraps it in one user turn of the processor's chat template (the segments as
  its interleaved content) with the generation prompt after it, for instruction-tuned models;
- ``image_token``: the placeholder to write for an image, when the processor has no ``image_token``;
- ``dtype``: ``auto`` (default: bfloat16 on a GPU, float32 on the CPU), ``float32``, ``bfloat16``,
  ``float16``; ``revision``: a hub branch, tag or commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from harness import paths
from harness.errors import HarnessError
from harness.prompt import Image, Prompt

log = logging.getLogger(__name__)

_IDENTITY_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".tiktoken", ".jinja")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_source(where: str, revision: str | None = None) -> tuple[str, str]:
    """(local folder, origin): a folder saved by ``save_pretrained`` (origin: a digest of its files), or
    a hub id resolved to its snapshot (origin: the commit). Loads nothing."""
    from harness.models.lms import hub_snapshot

    folder = Path(where)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise HarnessError(f"--model hf:{where}: no config.json there (expected a folder saved by save_pretrained)")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _IDENTITY_SUFFIXES)
        if not any(p.suffix == ".safetensors" for p in files):
            raise HarnessError(f"--model hf:{where}: no safetensors weights there (pickled .bin files are not loaded)")
        digests = {p.name: paths.file_sha256(p) for p in files}
        return str(folder.resolve()), f"local:{paths.fingerprint(digests)}"
    snapshot = hub_snapshot(where, revision, f"model hf:{where}", "a local folder (--model hf:DIR)")
    return str(snapshot), f"hub:{where}@{snapshot.name}"


class HFVisionLanguageModel:
    """A transformers image-text-to-text model behind the harness's model interface."""

    def __init__(self, source: str, prompt_style: str = "raw", image_token: str | None = None, dtype: str = "auto",
                 revision: str | None = None) -> None:  # fmt: skip
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if prompt_style not in ("raw", "chat"):
            raise HarnessError(f"--set prompt_style={prompt_style}: expected raw or chat")
        if dtype != "auto" and dtype not in _DTYPES:
            raise HarnessError(f"--set dtype={dtype}: expected auto, {', '.join(_DTYPES)}")
        self.source, self.prompt_style, self.dtype = source, prompt_style, dtype
        try:
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32).eval()
        except (ValueError, KeyError, OSError) as err:
            raise HarnessError(f"--model hf:{source}: {str(err).strip().splitlines()[0]}") from None
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None:
            raise HarnessError(f"--model hf:{source}: its processor has no tokenizer")
        self.tokenizer.padding_side = "left"  # generation continues every row at its last position
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.image_token = image_token or getattr(self.processor, "image_token", None)
        if prompt_style == "raw" and not self.image_token:
            raise HarnessError(f"--model hf:{source}: its processor names no image_token; pass --set image_token=...")

    # ---- the interface ----------------------------------------------------------------------------
    def to(self, device: torch.device) -> HFVisionLanguageModel:
        dtype = self.dtype if self.dtype != "auto" else ("bfloat16" if device.type == "cuda" else "float32")
        self.model.to(device=device, dtype=_DTYPES[dtype])
        return self

    def identity(self) -> dict:
        return {"prompt_style": self.prompt_style, "image_token": self.image_token,
                "dtype": str(next(self.model.parameters()).dtype)}  # fmt: skip

    def context_length(self) -> int | None:
        config = self.model.config.get_text_config()
        value = getattr(config, "max_position_embeddings", None)
        return value if isinstance(value, int) else None

    def prompt_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        """Positions each prompt takes, image tokens expanded as the processor expands them."""
        return [int(self._inputs([p])["attention_mask"].sum()) for p in prompts]

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        from harness.models.generate import cut_at_stop

        inputs = self._inputs(prompts)
        pad = self.tokenizer.pad_token_id
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  pad_token_id=pad)  # fmt: skip
        new = out[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [cut_at_stop(t, stop)[0].strip() for t in texts]

    @torch.no_grad()
    def loglikelihood(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation's tokens (tokenized alone) after its prompt."""
        inputs = self._inputs(prompts)
        conts = self.tokenizer(list(continuations), add_special_tokens=False)["input_ids"]
        width = max(len(c) for c in conts)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        n, length = ids.shape
        extra = torch.full((n, width), self.tokenizer.pad_token_id, dtype=ids.dtype)
        extra_mask = torch.zeros((n, width), dtype=mask.dtype)
        for i, c in enumerate(conts):
            extra[i, : len(c)] = torch.tensor(c, dtype=ids.dtype)
            extra_mask[i, : len(c)] = 1
        device = ids.device
        ids, mask = torch.cat([ids, extra.to(device)], 1), torch.cat([mask, extra_mask.to(device)], 1)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
        batch = {**inputs, "input_ids": ids, "attention_mask": mask}
        logits = self.model(**batch, position_ids=position_ids).logits.float()
        logprobs = torch.log_softmax(logits[:, length - 1 : length + width - 1], dim=-1)
        picked = logprobs.gather(-1, extra.to(device).unsqueeze(-1)).squeeze(-1) * extra_mask.to(device)
        return picked.sum(-1).tolist()

    # ---- prompts -> processor inputs ----------------------------------------------------------------
    def _inputs(self, prompts: Sequence[Prompt]) -> dict:
        texts, images = [], []
        for prompt in prompts:
            images.append([s.pixels.cpu().numpy() for s in prompt if isinstance(s, Image)])
            texts.append(self._text(prompt))
        has_images = any(images)
        kwargs = {"images": images} if has_images else {}
        try:
            inputs = self.processor(text=texts, return_tensors="pt", padding=True, **kwargs)
        except ValueError as err:
            raise HarnessError(
                f"--model hf:{self.source}: its processor refused a prompt: {str(err).splitlines()[0]}"
            ) from None
        device = self.model.device
        dtype = next(self.model.parameters()).dtype
        return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}

    def _text(self, prompt: Prompt) -> str:
        if self.prompt_style == "raw":
            return "".join(self.image_token if isinstance(s, Image) else s for s in prompt)
        content = [{"type": "image"} if isinstance(s, Image) else {"type": "text", "text": s} for s in prompt]
        messages = [{"role": "user", "content": content}]
        try:
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except ValueError as err:  # no chat template
            raise HarnessError(f"--model hf:{self.source}: prompt_style=chat needs a chat template ({err})") from None

    def __repr__(self) -> str:
        return f"HFVisionLanguageModel({json.dumps(self.source)}, prompt_style={self.prompt_style!r})"
