"""VisualPrefixModel: a vision encoder writes ``n_prefix`` embeddings in front of a causal LM.

encoder (timm) -> pooled feature -> linear map -> n_prefix x D, where D is the width of the LM's
input embeddings. Every image segment of a prompt becomes those n_prefix vectors and every text
segment its token embeddings, concatenated in order and left-padded into a batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.prompt import Image, Prompt

IGNORE = -100


@dataclass
class Embedded:
    """A left-padded batch ready for the LM: embeddings, attention mask and position ids."""

    embeds: torch.Tensor  # B x L x D
    attention_mask: torch.Tensor  # B x L, 1 for real positions
    position_ids: torch.Tensor  # B x L, counting real positions only
    labels: torch.Tensor | None = None  # B x L, IGNORE except on target tokens


class VisualPrefixModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        lm: nn.Module,
        tokenizer,
        n_prefix: int,
        image_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        add_bos: bool = False,
        suppress_token_ids: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.lm = lm
        self.tokenizer = tokenizer
        self.n_prefix = n_prefix
        self.image_size = image_size
        self.width = lm.get_input_embeddings().weight.shape[1]
        self.prefix_map = nn.Linear(encoder.num_features, n_prefix * self.width)
        self._init_prefix_map()
        self.register_buffer("image_mean", torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(image_std).view(1, 3, 1, 1), persistent=False)
        self.add_bos = add_bos
        self.suppress_token_ids = list(suppress_token_ids)
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    @torch.no_grad()
    def _init_prefix_map(self) -> None:
        """Start the prefix at the scale of the LM's own token embeddings.

        PyTorch's default init gives prefix vectors several times longer than any token embedding
        (4x for SmolLM2 with EfficientNet features), which the frozen LM reads as noise; the loss
        then starts far higher and falls more slowly. Sampled tokens keep the cost small for 256k
        vocabularies, and go through the embedding module so scaled embeddings (Gemma) count.
        """
        embedding = self.lm.get_input_embeddings()
        vocab = embedding.weight.shape[0]
        sample = torch.randperm(vocab, generator=torch.Generator().manual_seed(0))[:4096]
        scale = embedding(sample.to(embedding.weight.device)).float().std().item()
        nn.init.normal_(self.prefix_map.weight, std=scale / self.prefix_map.in_features**0.5)
        nn.init.zeros_(self.prefix_map.bias)

    @property
    def device(self) -> torch.device:
        return self.prefix_map.weight.device

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA; plain fp32 on the CPU, where bf16 matmuls are slow or emulated."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- images -------------------------------------------------------------------------------
    def preprocess(self, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 H x W x 3 images of any sizes -> normalised N x 3 x S x S float batch on the device."""
        size = (self.image_size, self.image_size)
        batch = []
        for px in pixels:
            x = px.to(self.device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float()
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            batch.append(x)
        x = torch.cat(batch) / 255.0
        return (x - self.image_mean) / self.image_std

    def encode_images(self, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        """N images -> N x n_prefix x D prefix embeddings."""
        features = self.encoder(self.preprocess(pixels))
        return self.prefix_map(features).view(len(pixels), self.n_prefix, self.width)

    # ---- prompts ------------------------------------------------------------------------------
    def embed(self, prompts: Sequence[Prompt], targets: Sequence[str] | None = None) -> Embedded:
        """Embed a batch of prompts (and optional target texts, which get labels and an EOS)."""
        texts = sorted({s for p in prompts for s in p if isinstance(s, str)})
        if targets is not None:
            texts = sorted(set(texts) | set(targets))
        token_ids = dict(zip(texts, self.tokenizer(texts, add_special_tokens=False)["input_ids"])) if texts else {}
        rows: list[list[int]] = []  # token ids, -1 where an image embedding goes
        label_rows: list[list[int]] = []
        images: list[torch.Tensor] = []
        for i, prompt in enumerate(prompts):
            ids = [self.tokenizer.bos_token_id] if self.add_bos else []
            for segment in prompt:
                if isinstance(segment, Image):
                    images.append(segment.pixels)
                    ids.extend([-1] * self.n_prefix)
                else:
                    ids.extend(token_ids[segment])
            labels = [IGNORE] * len(ids)
            if targets is not None:
                target = token_ids[targets[i]] + [self.eos_token_id]
                ids.extend(target)
                labels.extend(target)
            rows.append(ids)
            label_rows.append(labels)
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
        for i, (row, lab) in enumerate(zip(rows, label_rows)):
            ids[i, length - len(row) :] = torch.tensor(row)
            labels[i, length - len(row) :] = torch.tensor(lab)
            mask[i, length - len(row) :] = 1
        ids, mask, labels = ids.to(self.device), mask.to(self.device), labels.to(self.device)
        is_image = ids == -1
        embeds = self.lm.get_input_embeddings()(ids.clamp(min=0))
        if images:
            prefix = self.encode_images(images).to(embeds.dtype)
            embeds = embeds.masked_scatter(is_image.unsqueeze(-1), prefix.reshape(-1, self.width))
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return Embedded(embeds, mask, position_ids, labels if targets is not None else None)

    # ---- the LM -------------------------------------------------------------------------------
    def hidden_states(self, batch: Embedded, past_key_values=None, use_cache: bool = False):
        out = self.lm.get_decoder()(
            inputs_embeds=batch.embeds,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
        )
        return out.last_hidden_state, out.past_key_values

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm.get_output_embeddings()(hidden).float()

    def loss(self, images: Sequence[torch.Tensor], captions: Sequence[str]) -> torch.Tensor:
        """Frozen's objective: next-token loss on the caption tokens only, given ``[img] caption<eos>``."""
        prompts = [[Image(f"train{i}", px)] for i, px in enumerate(images)]
        return self.prompt_loss(prompts, captions)

    def prompt_loss(self, prompts: Sequence[Prompt], targets: Sequence[str]) -> torch.Tensor:
        with self.autocast():
            batch = self.embed(prompts, targets)
            hidden, _ = self.hidden_states(batch)
            # Position t predicts token t+1: keep only the positions whose next token is a target, so
            # the full-vocabulary logits are computed for the caption tokens alone.
            next_labels = batch.labels[:, 1:]
            keep = next_labels != IGNORE
            logits = self.logits(hidden[:, :-1][keep])
        return F.cross_entropy(logits, next_labels[keep])

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str] = ()) -> list[str]:
        from harness.generate import greedy_generate

        with self.autocast():
            return greedy_generate(self, prompts, max_new_tokens, stop)
