"""A batch of prompts as the LM takes it: shared by the model (which builds it) and the decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Embedded:
    """A left-padded batch ready for the LM: embeddings, attention mask and position ids."""

    embeds: torch.Tensor  # B x L x D
    attention_mask: torch.Tensor  # B x L, 1 for real positions
    position_ids: torch.Tensor  # B x L, counting real positions only
    labels: torch.Tensor | None = None  # B x L, IGNORE except on target tokens
    prefix: torch.Tensor | None = None  # images x n_prefix x D: the prompts' image prefixes, in order

    def without_last_position(self) -> Embedded:
        return Embedded(self.embeds[:, :-1], self.attention_mask[:, :-1], self.position_ids[:, :-1])
