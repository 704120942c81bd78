"""Batched greedy decoding with a KV cache over left-padded prompt embeddings.

Written here rather than through ``transformers.generate`` because the prompts are embeddings with
image prefixes, position ids must skip the left padding for every LM family, and the loop is the hot
path; its semantics are small: argmax, stop at EOS or a stop string, cut the text at the first stop
string, at most ``max_new_tokens`` tokens.

What makes it fast, none of which changes an answer: identical prompts are answered once; the others
are batched by length, so little of a batch is padding; leading segments that every prompt of a batch
shares (one few-shot support set for many queries) are run once and their KV cache is copied to every
row; rows leave the batch as soon as they are finished; no forward pass is run for a token that would
be past ``max_new_tokens``.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from harness.models.batch import Embedded
from harness.prompt import Image, Prompt

if TYPE_CHECKING:
    from harness.models.prefix import VisualPrefixModel

# A shared prefix shorter than this many tokens is recomputed per row: a batch-1 pass and copying its
# cache to every row cost more than they save.
MIN_SHARED_TOKENS = 16

SegmentKey = tuple[str, object]


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The text up to the first stop string, and whether one was found.

    Leading white space is dropped first: an LM that answers "\\nblue" has answered "blue", not "".
    """
    text = text.lstrip()
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class SegmentKeys:
    """Content keys of prompt segments: texts by value, images by a digest of their pixels.

    Images are compared by content, not by name, so blacked-out images are all one image; a tensor
    is hashed once however many prompts hold it.
    """

    def __init__(self) -> None:
        self._digests: dict[int, tuple] = {}
        self._held: list[torch.Tensor] = []  # keeps the tensors alive, so their ids stay theirs

    def __call__(self, segment: Image | str) -> SegmentKey:
        if not isinstance(segment, Image):
            return ("text", segment)
        px = segment.pixels
        if id(px) not in self._digests:
            data = px.detach().cpu().contiguous().numpy()
            self._digests[id(px)] = (tuple(px.shape), hashlib.blake2b(data.data, digest_size=16).digest())
            self._held.append(px)
        return ("image", self._digests[id(px)])


class ImagePrefixes:
    """The prefix embeddings of a generation call's images: each distinct image (by content) encoded once,
    with ``encode_for_eval``, however many prompts and batches hold it (a support image drawn for several
    queries, a query image asked several questions, every blacked-out image). Holds at most ``limit``."""

    def __init__(self, model: VisualPrefixModel, segment_key: SegmentKeys, limit: int = 16384) -> None:
        self.model, self.segment_key, self.limit = model, segment_key, limit
        self._done: dict[SegmentKey, torch.Tensor] = {}

    def __call__(self, images: Sequence[Image]) -> torch.Tensor:
        keys = [self.segment_key(image) for image in images]
        new = {key: image.pixels for key, image in zip(keys, images) if key not in self._done}
        if new:
            if len(self._done) + len(new) > self.limit:
                self._done.clear()
            self._done.update(zip(new, self.model.encode_for_eval(list(new.values()))))
        return torch.stack([self._done[key] for key in keys])


def prompt_lengths(model: VisualPrefixModel, prompts: Sequence[Prompt]) -> list[int]:
    """Each prompt's length in LM positions (BOS, n_prefix per image, the tokens of its texts)."""
    texts = sorted({s for p in prompts for s in p if not isinstance(s, Image)})
    n_tokens = (
        dict(zip(texts, map(len, model.tokenizer(texts, add_special_tokens=False)["input_ids"]))) if texts else {}
    )
    bos = int(model.add_bos)
    return [bos + sum(model.n_prefix if isinstance(s, Image) else n_tokens[s] for s in p) for p in prompts]


def generate(
    model: VisualPrefixModel,
    prompts: Sequence[Prompt],
    max_new_tokens: int,
    stop: Sequence[str] = (),
    batch_size: int | None = None,
    timings: dict[str, float] | None = None,
) -> list[str]:
    """Greedy answers in the prompts' order: each distinct prompt once, in batches sorted by length."""
    segment_key = SegmentKeys()
    keys = [tuple(map(segment_key, p)) for p in prompts]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}  # each distinct prompt's first index
    distinct = sorted(first.values())
    lengths = prompt_lengths(model, [prompts[i] for i in distinct])
    order = [i for _, i in sorted(zip(lengths, distinct), key=lambda pair: pair[0])]
    size = batch_size or len(order) or 1
    answers: dict[int, str] = {}
    prefixes = ImagePrefixes(model, segment_key)
    for start in range(0, len(order), size):
        batch = order[start : start + size]
        texts = greedy_generate(
            model, [prompts[i] for i in batch], max_new_tokens, stop, timings, segment_key, prefixes
        )
        answers.update(zip(batch, texts))
    return [answers[first[key]] for key in keys]


@torch.no_grad()
def greedy_generate(
    model: VisualPrefixModel,
    prompts: Sequence[Prompt],
    max_new_tokens: int,
    stop: Sequence[str] = (),
    timings: dict[str, float] | None = None,
    segment_key: SegmentKeys | None = None,
    prefixes: ImagePrefixes | None = None,
) -> list[str]:
    """Greedy answers for one batch. ``timings`` (optional) accumulates seconds of encode, prefill, decode;
    ``prefixes``: the call's encoded images, to take from and add to."""
    clock = _Clock(model.device, timings)
    n = len(prompts)
    segment_key = segment_key or SegmentKeys()
    prefixes = prefixes or ImagePrefixes(model, segment_key)
    shared = shared_segments(model, prompts, segment_key)
    cache = None
    with clock("encode"):
        head = model.embed([prompts[0][:shared]], prefixes=prefixes) if shared else None
        batch = model.embed([p[shared:] for p in prompts], continuation=bool(shared), prefixes=prefixes)
    with clock("prefill"):
        if head is not None:
            _, cache = model.hidden_states(head, use_cache=True)
            cache.batch_repeat_interleave(n)
            offset = head.attention_mask.shape[1]
            mask = torch.cat([head.attention_mask.expand(n, -1), batch.attention_mask], dim=1)
            batch = Embedded(batch.embeds, mask, batch.position_ids + offset)
        hidden, cache = model.hidden_states(batch, cache=cache, use_cache=True)
    rows = list(range(n))  # the prompt each batch row answers; finished rows leave the batch
    generated: list[list[int]] = [[] for _ in range(n)]
    mask, position = batch.attention_mask, batch.position_ids[:, -1:]
    with clock("decode"):
        for step in range(max_new_tokens):
            logits = model.logits(hidden[:, -1])
            if model.suppress_token_ids:
                logits[:, model.suppress_token_ids] = float("-inf")
            next_token = logits.argmax(-1).to(model.device)  # a split LM's head may be on another device
            keep = []
            for j, (row, token) in enumerate(zip(rows, next_token.tolist())):
                if token == model.eos_token_id:
                    continue
                generated[row].append(token)
                if stop and cut_at_stop(model.tokenizer.decode(generated[row], skip_special_tokens=True), stop)[1]:
                    continue
                keep.append(j)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=model.device)
                _select_rows(cache, index)
                mask, position, next_token = mask[index], position[index], next_token[index]
                rows = [rows[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            position = position + 1
            step_input = Embedded(model.lm.get_input_embeddings()(next_token[:, None]), mask, position)
            hidden, cache = model.hidden_states(step_input, cache=cache, use_cache=True)
    return [cut_at_stop(model.tokenizer.decode(ids, skip_special_tokens=True), stop)[0].strip() for ids in generated]


def _select_rows(cache, index: torch.Tensor) -> None:
    """Keep the cache rows ``index``, layer by layer on each layer's own device (a split LM's layers
    live on several)."""
    for layer in cache.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.batch_select_indices(index.to(layer.keys.device))


def shared_segments(model: VisualPrefixModel, prompts: Sequence[Prompt], segment_key: SegmentKeys) -> int:
    """How many leading segments every prompt shares, if they are worth running once; else 0."""
    if len(prompts) < 2:
        return 0
    shortest = min(len(p) for p in prompts) - 1  # every prompt keeps a segment of its own
    shared = 0
    while shared < shortest and len({segment_key(p[shared]) for p in prompts}) == 1:
        shared += 1
    if shared and prompt_lengths(model, [prompts[0][:shared]])[0] >= MIN_SHARED_TOKENS:
        return shared
    return 0


class _Clock:
    """Accumulates wall seconds per phase into ``totals`` (synchronising the device), or does nothing."""

    def __init__(self, device: torch.device, totals: dict[str, float] | None) -> None:
        self.device, self.totals = device, totals

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self.totals is None:
            yield
            return
        synchronize(self.device)
        start = time.perf_counter()
        yield
        synchronize(self.device)
        self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - start


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
