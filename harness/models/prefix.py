"""VisualPrefixModel: a vision encoder writes ``n_prefix`` embeddings in front of a causal LM.

encoder (timm) -> pooled feature -> linear map -> n_prefix x D, where D is the width of the LM's
input embeddings. Every image segment of a prompt becomes those n_prefix vectors and every text
segment its token embeddings, concatenated in order and left-padded into a batch.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from harness.models.batch import Embedded
from harness.models.generate import generate, prompt_lengths
from harness.models.objectives import Layout
from harness.prompt import Image, Prompt, Target

IGNORE = -100
# At evaluation on the CPU the encoder takes at most this many pixels per call (2 images at 224 px, 32 at 64 px):
# measured on a 2-core Xeon, EfficientNet-Lite0's per-image time grows with the batch once its activations leave
# the cache (73 ms per image at 224 px in one call of 160 images, 33 ms in calls of 8).
EVAL_ENCODE_PIXELS = 131_072
# Full-vocabulary logits of at most this many caption tokens exist at once in the loss: 4,096 x 49k fp32
# is 0.8 GB, where a 1,024-image batch of 16-token captions would need 3.2 GB (and as much for its gradient).
LOSS_CHUNK_TOKENS = 4096


def chunked_cross_entropy(
    hidden: torch.Tensor,
    labels: torch.Tensor,
    head: nn.Module,
    chunk_tokens: int = LOSS_CHUNK_TOKENS,
    divisor: float | None = None,
) -> torch.Tensor:
    """Cross-entropy of ``head(hidden)`` (N x D -> N x vocabulary) against ``labels``, chunk by chunk:
    summed and divided by ``divisor`` (default N, the mean).

    A chunk's logits are recomputed in the backward pass instead of being kept, so the logits of at most
    ``chunk_tokens`` rows are alive at any time; a batch that fits in one chunk takes the plain path.
    """
    divisor = len(labels) if divisor is None else divisor
    if len(labels) <= chunk_tokens:
        return _summed_cross_entropy(hidden, labels, head) / divisor
    total = sum(
        checkpoint(_summed_cross_entropy, h, y, head, use_reentrant=False)
        for h, y in zip(hidden.split(chunk_tokens), labels.split(chunk_tokens))
    )
    return total / divisor


def _summed_cross_entropy(hidden: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), labels, reduction="sum")


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
        self.bf16: bool | None = None  # None: bf16 autocast on CUDA, fp32 elsewhere (until tune_for_device)
        self.precision, self.precision_reason = "", ""  # what tune_for_device chose, and why
        self.channels_last = False  # images go to the encoder channels-last (set with the encoder's layout)
        self.layout = Layout()  # how training sequences are laid out (the recipe's, set by training)

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
        """bf16 autocast where the model runs in bf16 (``tune_for_device``; before it, by default on CUDA)."""
        bf16 = self.device.type == "cuda" if self.bf16 is None else self.bf16
        if bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def use_bf16(self) -> VisualPrefixModel:
        """bf16 compute, with the LM's weights stored in bf16 unless they train.

        Autocast alone re-casts every frozen LM weight to bf16 at every call (its cast cache keeps only
        weights that require grad); storing them in bf16 skips that and halves their memory.
        """
        self.bf16 = True
        split = getattr(self.lm, "hf_device_map", None) is not None  # loaded in bf16 already, and not movable
        if not split and not any(p.requires_grad for p in self.lm.parameters()):
            self.lm.to(torch.bfloat16)
        return self

    def tune_for_device(self, precision: str = "auto", evaluation: bool = False) -> VisualPrefixModel:
        """The fast settings for where the model is: the precision (``harness.precision``: ``precision``, ``auto``
        deciding by the hardware for training and taking fp32 for ``evaluation``), bf16 compute with the frozen LM's
        weights stored in bf16 (``use_bf16``) or plain fp32; and on CUDA a channels-last encoder (cuDNN's NHWC
        kernels). An LM split over devices (``--lm-device-map``) and loaded in bf16 computes in bf16 whatever is asked.

        Not channels-last on the CPU: there a channels-last encoder in training mode changes the loss from the
        default layout's (which the naive path gives), and the trained model with it, for little time saved.
        """
        from harness import precision as precisions

        if self.device.type == "cuda":
            self.encoder.to(memory_format=torch.channels_last)
            self.channels_last = True
        self.precision, self.precision_reason = precisions.resolve(self.device, precision, evaluation)
        split = getattr(self.lm, "hf_device_map", None) is not None
        if split and self.precision == "fp32" and self.lm.get_input_embeddings().weight.dtype == torch.bfloat16:
            self.precision, self.precision_reason = "bf16", "the LM split over devices (--lm-device-map) is in bf16"
        if self.precision == "bf16":
            self.use_bf16()
        else:
            self.bf16 = False
        return self

    # ---- images -------------------------------------------------------------------------------
    def preprocess(self, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 H x W x 3 images of any sizes -> normalised N x 3 x S x S float batch on the device.

        Images of one size travel together as uint8 (a quarter of the bytes of floats) and are resized
        and normalised as one batch on the device; the result is channels-last where the encoder is.
        """
        size = (self.image_size, self.image_size)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, px in enumerate(pixels):
            by_shape.setdefault(tuple(px.shape), []).append(i)
        out = torch.empty((len(pixels), 3, *size), device=self.device)
        for indices in by_shape.values():
            x = torch.stack([pixels[i] for i in indices]).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            out[indices] = x
        x = (out / 255.0 - self.image_mean) / self.image_std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def encode_images(self, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        """N images -> N x n_prefix x D prefix embeddings."""
        features = self.encoder(self.preprocess(pixels))
        return self.prefix_map(features).view(len(pixels), self.n_prefix, self.width)

    @torch.no_grad()
    def encode_for_eval(self, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        """``encode_images`` as evaluation runs it: on the CPU, an encoder in eval mode gets channels-last
        images (oneDNN's faster kernels; weights untouched) in calls of at most ``EVAL_ENCODE_PIXELS`` pixels.
        Features differ from one plain call's by float rounding (about 1e-5), as any change of batch does."""
        if self.device.type != "cpu" or self.encoder.training:
            return self.encode_images(pixels)
        x = self.preprocess(pixels).contiguous(memory_format=torch.channels_last)
        chunk = max(1, EVAL_ENCODE_PIXELS // self.image_size**2)
        features = torch.cat([self.encoder(part) for part in x.split(chunk)])
        return self.prefix_map(features).view(len(pixels), self.n_prefix, self.width)

    # ---- prompts ------------------------------------------------------------------------------
    def embed(
        self,
        prompts: Sequence[Prompt],
        targets: Sequence[str] | None = None,
        continuation: bool = False,
        target_eos: bool = True,
        prefixes: Callable[[list[Image]], torch.Tensor] | None = None,
    ) -> Embedded:
        """Embed a batch of prompts (and optional target texts, which get labels and, if ``target_eos``, an EOS).

        ``continuation``: the prompts continue a prefix already in the KV cache, so they get no BOS. A prompt's
        ``Target`` segments (training prompts) get labels too. ``prefixes``: where the images' prefix embeddings
        come from (generation's cache of encoded images); default ``encode_images``.
        """
        texts = sorted({s.text if isinstance(s, Target) else s for p in prompts for s in p if not isinstance(s, Image)})
        if targets is not None:
            texts = sorted(set(texts) | set(targets))
        token_ids = dict(zip(texts, self.tokenizer(texts, add_special_tokens=False)["input_ids"])) if texts else {}
        rows: list[list[int]] = []  # token ids, -1 where an image embedding goes
        label_rows: list[list[int]] = []
        images: list[Image] = []
        for i, prompt in enumerate(prompts):
            ids = [self.tokenizer.bos_token_id] if self.add_bos and not continuation else []
            spans = []  # where Target segments are
            for segment in prompt:
                if isinstance(segment, Image):
                    images.append(segment)
                    ids.extend([-1] * self.n_prefix)
                elif isinstance(segment, Target):
                    spans.append((len(ids), len(ids) + len(token_ids[segment.text])))
                    ids.extend(token_ids[segment.text])
                else:
                    ids.extend(token_ids[segment])
            labels = [IGNORE] * len(ids)
            for start, end in spans:
                labels[start:end] = ids[start:end]
            if targets is not None:
                target = token_ids[targets[i]] + ([self.eos_token_id] if target_eos else [])
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
        prefix = None
        if images:
            prefix = prefixes(images) if prefixes else self.encode_images([image.pixels for image in images])
            prefix = prefix.to(embeds.device, embeds.dtype)
            embeds = embeds.masked_scatter(is_image.unsqueeze(-1), prefix.reshape(-1, self.width))
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        labelled = targets is not None or any(isinstance(s, Target) for p in prompts for s in p)
        return Embedded(embeds, mask, position_ids, labels if labelled else None, prefix)

    # ---- the LM -------------------------------------------------------------------------------
    def hidden_states(self, batch: Embedded, cache=None, use_cache: bool = False):
        """The decoder's last hidden states and its KV cache (``cache``: the one to extend, if any)."""
        decoder = self.lm.get_decoder()
        extra = {} if cache is None else {_cache_argument(type(decoder)): cache}
        out = decoder(
            inputs_embeds=batch.embeds,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=use_cache,
            **extra,
        )
        new = getattr(out, "cache", None)
        return out.last_hidden_state, new if new is not None else getattr(out, "past_key_values", None)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm.get_output_embeddings()(hidden).float()

    def loss(
        self, images: Sequence[torch.Tensor], captions: Sequence[str], divisor: float | None = None
    ) -> torch.Tensor:
        """Frozen's objective: next-token loss on the caption tokens only, given ``[img] caption<eos>``.

        The mean over this batch's caption tokens, or their sum over ``divisor``: data-parallel training
        divides each process's share by the whole batch's token count (``target_tokens``), so the
        averaged gradient is the one-process gradient of the whole batch.
        """
        prompts = [[Image(f"train{i}", px)] for i, px in enumerate(images)]
        return self.prompt_loss(prompts, captions, divisor)

    def forward(
        self,
        images: Sequence[torch.Tensor],
        captions: Sequence[str],
        divisor: float | None = None,
        contexts: Sequence[str] | None = None,
        image_divisor: float | None = None,
    ) -> torch.Tensor:
        """The training loss: what ``model(...)`` and DistributedDataParallel call. Frozen's ``loss``, or with a
        training layout of several pairs or the embedding loss, or texts between each image and its target
        (``contexts``), ``objectives.loss`` (``image_divisor``: what the embedding loss's sum is divided by)."""
        if self.layout.plain and contexts is None:
            return self.loss(images, captions, divisor)
        from harness.models import objectives

        return objectives.loss(self, images, captions, divisor, contexts, image_divisor)

    def target_tokens(self, targets: Sequence[str]) -> int:
        """How many tokens the loss counts for these training targets, laid out as ``layout`` says."""
        from harness.models import objectives

        return objectives.target_tokens(self.tokenizer, self.layout, targets)

    def prompt_loss(
        self, prompts: Sequence[Prompt], targets: Sequence[str], divisor: float | None = None
    ) -> torch.Tensor:
        with self.autocast():
            return self.target_loss(self.embed(prompts, targets), divisor)

    def target_loss(self, batch: Embedded, divisor: float | None = None) -> torch.Tensor:
        """The next-token loss on a labelled batch's target tokens (their sum over ``divisor``, default the mean)."""
        # Position t predicts token t+1, so the last position predicts nothing: the causal LM runs
        # without it (the other positions are unchanged), and the full-vocabulary logits are computed
        # only at the positions whose next token is a target, the caption tokens.
        hidden, _ = self.hidden_states(batch.without_last_position())
        next_labels = batch.labels[:, 1:].to(hidden.device)  # a split LM ends on another device
        keep = next_labels != IGNORE
        head = self.lm.get_output_embeddings()
        return chunked_cross_entropy(hidden[keep], next_labels[keep], head, divisor=divisor)

    @torch.no_grad()
    def loglikelihood(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation's tokens (tokenized alone, no EOS) after its prompt."""
        with self.autocast():
            batch = self.embed(prompts, continuations, target_eos=False)
            hidden, _ = self.hidden_states(batch.without_last_position())
            next_labels = batch.labels[:, 1:].to(hidden.device)
            keep = next_labels != IGNORE
            logprobs = torch.log_softmax(self.logits(hidden[keep]), dim=-1)
            picked = logprobs.gather(-1, next_labels[keep].unsqueeze(-1)).squeeze(-1)
        rows = keep.nonzero()[:, 0]
        sums = torch.zeros(len(prompts), device=picked.device).index_add_(0, rows, picked)
        return sums.tolist()

    # ---- the harness's model interface (harness/models/api.py) ----------------------------------------
    def context_length(self) -> int | None:
        """The LM's context in positions, from its config (None where the config does not say)."""
        config = self.lm.config
        for field in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            if isinstance(getattr(config, field, None), int):
                return getattr(config, field)
        return None

    def prompt_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        return prompt_lengths(self, prompts)

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str] = (), batch_size: int | None = None
    ) -> list[str]:
        """Greedy answers in the prompts' order; ``batch_size`` prompts at a time (default: all at once)."""
        with self.autocast():
            return generate(self, prompts, max_new_tokens, stop, batch_size)


@functools.cache
def _cache_argument(decoder: type) -> str:
    """The name a decoder's forward takes its KV cache by: ``cache`` from transformers 5.2x on (where
    ``past_key_values`` warns at every call, and goes in 5.40), ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
