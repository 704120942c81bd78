"""Training: Frozen's captioning objective, the recipe's optimiser, resumable checkpoints.

The data order is a function of (seed, step) alone, and checkpoints carry the optimizer and RNG
state, so a run killed at any moment and started again continues exactly where its last checkpoint
left it and ends at the same step count.
"""

from __future__ import annotations

import logging
import math
import time

import torch
from tqdm import tqdm

from harness import checkpoint, data
from harness.errors import HarnessError
from harness.models import ModelSpec, build, trainable_state
from harness.models.prefix import VisualPrefixModel

log = logging.getLogger(__name__)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The examples of training step ``step``: epochs are seeded permutations, walked in order."""
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return out


def apply_state(model: VisualPrefixModel, state: dict[str, torch.Tensor]) -> None:
    """Load checkpointed parts into the model, restoring ties (an LM head stored once with its embedding)."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        groups.setdefault(prefix, {})[rest] = value
    for prefix, sub in groups.items():
        module = getattr(model, prefix)
        own = module.state_dict()
        ptrs = {}
        for k, v in own.items():
            ptrs.setdefault(v.data_ptr(), []).append(k)
        tied = {k for keys in ptrs.values() if len(keys) > 1 for k in keys}
        missing, unexpected = module.load_state_dict(sub, strict=False)
        bad = [k for k in missing if k not in tied] + list(unexpected)
        if bad:
            raise HarnessError(f"checkpoint does not fit the model: {prefix}.{bad[0]} missing or unexpected")


def _optimizer(model: VisualPrefixModel, spec: ModelSpec) -> tuple[torch.optim.Optimizer, dict[str, torch.nn.Parameter]]:
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    recipe = spec.recipe
    opt = torch.optim.Adam(params.values(), lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)
    return opt, params


def _optimizer_state(opt: torch.optim.Optimizer, params: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in params.items():
        for key, value in opt.state.get(p, {}).items():
            out[f"{name}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def _restore_optimizer(opt: torch.optim.Optimizer, params: dict[str, torch.nn.Parameter], saved: dict) -> None:
    for key, value in saved.items():
        name, _, field = key.rpartition("/")
        if name not in params:
            raise HarnessError(f"checkpoint optimizer state names unknown parameter '{name}'")
        # Adam keeps its step count on the CPU unless it runs "capturable"; the moments go with the weights.
        opt.state[params[name]][field] = value if field == "step" else value.to(params[name].device)


def _set_train_mode(model: VisualPrefixModel, spec: ModelSpec) -> None:
    """Only the parts that train are in train mode: a frozen LM or encoder keeps eval behaviour."""
    model.eval()
    model.prefix_map.train()
    model.encoder.train(spec.recipe.train_encoder)
    model.lm.train(spec.recipe.train_lm)


def train(spec: ModelSpec, progress: bool = True, device: str | None = None) -> VisualPrefixModel:
    """Train ``spec`` to its recipe's step count (resuming from its checkpoint) and return the model."""
    recipe = spec.recipe
    folder = spec.checkpoint_dir
    saved = checkpoint.load(folder, spec.fingerprint)
    model = build(spec, device)
    if saved is not None:
        apply_state(model, saved.model)
    if saved is not None and saved.step >= recipe.steps:
        return model.eval()
    dataset = data.load(recipe.train_data)
    captions = dataset.captions.get("train", [])
    if not captions:
        raise HarnessError(f"training set '{recipe.train_data}' has no training captions")
    opt, params = _optimizer(model, spec)
    start = 0
    torch.manual_seed(recipe.seed)
    if saved is not None:
        _restore_optimizer(opt, params, saved.optimizer)
        torch.set_rng_state(saved.rng)
        start = saved.step
        log.info("resuming %s from step %d of %d (%s)", spec.name, start, recipe.steps, folder)
    else:
        log.info("training %s for %d steps (%s)", spec.name, recipe.steps, folder)
    meta = {"fingerprint": spec.fingerprint, "model": spec.describe()}
    _set_train_mode(model, spec)
    bar = tqdm(total=recipe.steps, initial=start, desc=f"train {spec.name}", disable=not progress, unit="step")
    last_saved = start
    t0, images_seen = time.perf_counter(), 0
    for step in range(start, recipe.steps):
        batch = [captions[i] for i in batch_indices(len(captions), recipe.batch_size, recipe.seed, step)]
        images = [dataset.image(c.image) for c in batch]
        if recipe.train_images == "black":
            images = [torch.zeros_like(px) for px in images]
        for group in opt.param_groups:
            group["lr"] = recipe.lr * min(1.0, (step + 1) / recipe.warmup_steps) if recipe.warmup_steps else recipe.lr
        loss = model.loss(images, [c.text for c in batch])
        if not math.isfinite(loss.item()):
            bar.close()
            raise HarnessError(
                f"training {spec.name}: loss is {loss.item()} at step {step}; the last good checkpoint "
                f"(step {last_saved}) is kept in {folder}"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params.values(), recipe.grad_clip)
        opt.step()
        images_seen += len(batch)
        done = step + 1
        bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{images_seen / (time.perf_counter() - t0):.1f}")
        bar.update(1)
        if done % recipe.save_every == 0 or done == recipe.steps:
            state = trainable_state(model, recipe)
            ckpt = checkpoint.Checkpoint(done, state, _optimizer_state(opt, params), torch.get_rng_state(), meta)
            checkpoint.save(folder, ckpt)
            last_saved = done
    bar.close()
    return model.eval()


def load_trained(spec: ModelSpec, device: str | None = None) -> VisualPrefixModel | None:
    """The trained model if its checkpoint is complete, else None."""
    saved = checkpoint.load(spec.checkpoint_dir, spec.fingerprint)
    if saved is None or saved.step < spec.recipe.steps:
        return None
    model = build(spec, device)
    apply_state(model, saved.model)
    return model.eval()
