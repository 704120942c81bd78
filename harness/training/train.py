"""Training: Frozen's captioning objective, the recipe's optimiser, resumable checkpoints.

The data order is a function of (seed, step) alone, and checkpoints carry the optimizer and RNG
state, so a run killed at any moment and started again continues exactly where its last checkpoint
left it and ends at the same step count.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from harness import distributed, locks
from harness.config import Recipe
from harness.errors import HarnessError
from harness.models import groups
from harness.models.loading import apply_state, build, trainable_state
from harness.models.objectives import Layout
from harness.models.prefix import VisualPrefixModel
from harness.training import checkpoint
from harness.training.curves import append_curve
from harness.training.trainset import TrainSet, batch_indices

if TYPE_CHECKING:  # the spec trains itself through this module
    from harness.models.spec import ModelSpec

log = logging.getLogger(__name__)
__all__ = ["batch_indices", "learning_rate", "train"]


def learning_rate(recipe: Recipe, step: int, group: str = "") -> float:
    """The learning rate of step ``step`` (of a parameter group's own rate, ``group`` given; else of ``lr``): a
    linear warmup, then constant, or a cosine to 0 at the last step."""
    lr = recipe.group_lr(group) if group else recipe.lr
    if recipe.warmup_steps and step < recipe.warmup_steps:
        return lr * ((step + 1) / recipe.warmup_steps)  # as before the schedules, to the last bit
    if recipe.lr_schedule == "cosine":
        progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    return lr


def _optimizer(
    model: VisualPrefixModel, spec: ModelSpec
) -> tuple[torch.optim.Optimizer, dict[str, torch.nn.Parameter]]:
    """Adam over one parameter group per trained part (``harness.models.groups``), each at its own rate."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    recipe = spec.recipe
    opt = torch.optim.Adam(groups.optimizer_groups(params, recipe), lr=recipe.lr, betas=recipe.betas,
                           weight_decay=recipe.weight_decay)  # fmt: skip
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


def train(spec: ModelSpec, progress: bool = True, device: str | None = None, precision: str = "auto",
          looked: tuple[checkpoint.Checkpoint | None] | None = None) -> VisualPrefixModel:  # fmt: skip
    """Train ``spec`` to its recipe's step count (resuming from its checkpoint) and return the model, computing at
    ``precision`` (auto, fp32, bf16: ``harness.precision``). ``looked``: ``(checkpoint,)`` as the caller read it
    just before (None: there was none), not read again unless its file has changed since.

    One process at a time trains a checkpoint folder (rank 0 takes the lock for a launch of several): another
    asking for the same model waits, then loads what the first trained. A setting that torch refuses inside a
    step is one line saying what to set."""
    with locks.held(spec.checkpoint_dir, enabled=distributed.is_main()):
        try:
            return _train(spec, progress, device, precision, looked)
        except ValueError as err:  # BatchNorm in training mode over one value per channel
            if "more than 1 value per channel" not in str(err):
                raise
            share = spec.recipe.batch_size // distributed.world_size()
            raise HarnessError(
                f"training {spec.name}: the encoder's BatchNorm layers need more than one value per channel in "
                f"training mode, and {share} image per pass at image_size {spec.recipe.image_size} gives one (a "
                "1x1 feature map): set batch_size to 2 or more (--set batch_size=2), or a larger image_size"
            ) from None


def _train(spec: ModelSpec, progress: bool, device: str | None, precision: str,
           looked: tuple[checkpoint.Checkpoint | None] | None) -> VisualPrefixModel:  # fmt: skip
    recipe = spec.recipe
    folder = spec.checkpoint_dir
    world = distributed.world_size()
    if recipe.batch_size % world:
        raise HarnessError(
            f"recipe batch_size {recipe.batch_size} of {spec.name} does not split over {world} processes: "
            f"the batch is the global one, so use a multiple of {world} (--set batch_size=...)"
        )
    if (recipe.batch_size // world) % recipe.pairs:
        raise HarnessError(
            f"recipe batch_size {recipe.batch_size} of {spec.name} over {world} processes gives each a share that "
            f"is not whole sequences of {recipe.pairs} pairs: use a multiple of {world * recipe.pairs}"
        )
    with distributed.main_first():  # an LM conversion or a dataset build happens once, on rank 0
        fresh = looked is not None and checkpoint.unchanged(folder, looked[0])
        saved = looked[0] if fresh else checkpoint.load(folder, spec.fingerprint)
        model = build(spec, device, precision=precision)
        if saved is not None:
            apply_state(model, saved.model)
        if saved is not None and saved.step >= recipe.steps:
            return model.eval()
        trainset = TrainSet(recipe)
    if world > 1:
        _sync_batchnorm(model, spec)
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
    # What trained it, each machine once (a resumed training may span several): the fingerprint names
    # the model, not the floats, and another CPU's kernels or thread count trains other weights.
    earlier = saved.meta.get("trained_with", []) if saved is not None else []
    now = trained_with(model.device, model.precision)
    history = earlier + [now] * (now not in earlier)
    meta = {"fingerprint": spec.fingerprint, "model": spec.describe(), "trained_with": history,
            "param_groups": groups.record(opt.param_groups, recipe)}  # fmt: skip
    _set_train_mode(model, spec)
    model.layout = Layout.of(recipe)
    step_loss = _data_parallel(model) if world > 1 else model
    bar = tqdm(total=recipe.steps, initial=start, desc=f"train {spec.name}", disable=not progress, unit="step")
    last_saved = start
    t0, images_seen = time.perf_counter(), 0
    micro = [recipe.batch_size // world]  # images per forward pass; out of memory halves it (whole sequences)
    curve: list[dict] = []  # the steps since the last checkpoint, logged with it (train_log.jsonl)
    for step, (images, texts, contexts, tokens) in enumerate(_batches(model, trainset, recipe, start), start):
        for group in opt.param_groups:
            group["lr"] = learning_rate(recipe, step, group["name"])
        opt.zero_grad(set_to_none=True)
        part = (images, texts, contexts)
        value = distributed.all_reduce_sum(_backward(step_loss, part, tokens / world, micro, folder, step)) / world
        if not math.isfinite(value):
            bar.close()
            raise HarnessError(
                f"training {spec.name}: loss is {value} at step {step}; the last good checkpoint "
                f"(step {last_saved}) is kept in {folder}"
            )
        if recipe.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params.values(), recipe.grad_clip)
        opt.step()
        images_seen += len(images) * world
        done = step + 1
        bar.set_postfix(loss=f"{value:.3f}", img_s=f"{images_seen / (time.perf_counter() - t0):.1f}")
        bar.update(1)
        curve.append({"step": done, "loss": value, "lr": learning_rate(recipe, step),
                      "seconds": round(time.perf_counter() - t0, 3)})  # fmt: skip
        if done % recipe.save_every == 0 or done == recipe.steps:
            if distributed.is_main():  # every process holds the same weights; rank 0 writes them
                append_curve(folder, curve)
                state = trainable_state(model, recipe)
                ckpt = checkpoint.Checkpoint(done, state, _optimizer_state(opt, params), torch.get_rng_state(), meta)
                checkpoint.save(folder, ckpt)
            distributed.barrier()
            last_saved = done
            curve = []
    bar.close()
    return model.eval()


def trained_with(device: torch.device, precision: str = "") -> dict:
    """The settings that change a training's floats on ``device``: the torch version, and the CPU's
    vector kernels and thread count (``cpu``) or the GPU's name; and the precision where it is not what the
    device always ran at (bf16 on a CPU, fp32 on CUDA)."""
    from harness.precision import LEGACY

    if device.type == "cpu":
        out = {"torch": torch.__version__, "device": "cpu", "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
               "cpu_threads": torch.get_num_threads()}  # fmt: skip
    else:
        out = {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        }
    if precision and precision != LEGACY.get(device.type, "fp32"):
        out["precision"] = precision
    return out


def _backward(step_loss, part: tuple, divisor: float, micro: list[int], folder, step: int) -> float:
    """Forward and backward of this process's share of the batch (images, targets, contexts or None),
    ``micro[0]`` images at a time, gradients accumulated; returns the summed loss. Each part's target-token loss
    sum is divided by the whole batch's token count (and an embedding loss by the share's image count), so the
    parts add up to the loss of the whole batch and the gradient is the same. Out of memory halves ``micro[0]``,
    keeping whole sequences (noted in the checkpoint folder's events.jsonl), and redoes the step.
    """
    import contextlib

    images, texts, contexts = part
    layout = getattr(step_loss, "module", step_loss).layout  # the model itself, or the one DDP wraps
    pairs = layout.pairs
    while True:
        try:
            total = 0.0
            starts = range(0, len(images), micro[0])
            for i, start in enumerate(starts):
                last = i == len(starts) - 1
                # DDP averages gradients once, after the last part (no_sync holds the others back).
                sync = contextlib.nullcontext() if last or not hasattr(step_loss, "no_sync") else step_loss.no_sync()
                end = start + micro[0]
                extra = {} if contexts is None else {"contexts": contexts[start:end]}
                if not layout.plain:
                    extra["image_divisor"] = len(images)
                with sync:
                    loss = step_loss(images[start:end], texts[start:end], divisor, **extra)
                    loss.backward()
                total += loss.item()
            return total
        except torch.OutOfMemoryError:
            if micro[0] <= pairs:
                raise HarnessError(
                    f"out of memory training on one sequence ({pairs} images) at step {step}: the model does not "
                    "fit this device"
                ) from None
            for p in _trained_parameters(step_loss):
                p.grad = None
            micro[0] = max(pairs, micro[0] // 2 // pairs * pairs)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("out of memory at step %d: %d images per pass now, gradients accumulated (the batch "
                        "stays %d; noted in %s)", step, micro[0], len(images), folder / "events.jsonl")  # fmt: skip
            from harness.paths import append_event

            if distributed.is_main():
                folder.mkdir(parents=True, exist_ok=True)
                append_event(folder / "events.jsonl", {"event": "out_of_memory", "stage": "train", "step": step,
                                                       "images_per_pass_now": micro[0]})  # fmt: skip


def _trained_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _sync_batchnorm(model: VisualPrefixModel, spec: ModelSpec) -> None:
    """On GPUs a trained encoder's BatchNorm layers become synchronised ones, so their batch statistics
    are the whole batch's, as in one process. gloo has no synchronised BatchNorm, so on CPUs each
    process normalises its own share of the batch (docs/distributed.md)."""
    if model.device.type == "cuda" and spec.recipe.train_encoder:
        from timm.layers import convert_sync_batchnorm  # BatchNorm and timm's BatchNormAct alike

        model.encoder = convert_sync_batchnorm(model.encoder)


def _data_parallel(model: VisualPrefixModel) -> torch.nn.Module:
    """The model wrapped for data-parallel training (only the trained weights' gradients are averaged)."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [model.device.index] if model.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _batches(
    model: VisualPrefixModel, trainset: TrainSet, recipe: Recipe, start: int
) -> Iterator[tuple[list[torch.Tensor], list[str], list[str] | None, int]]:
    """Each step's images, targets and contexts (None when there are none: captions; this process's share of the
    batch) and the target-token count of the whole batch, from ``start`` on; the next step's images load in a
    worker meanwhile."""
    world, rank = distributed.world_size(), distributed.rank()
    share = recipe.batch_size // world

    def load(step: int) -> tuple[list[torch.Tensor], list[str], list[str] | None, list[str]]:
        batch = trainset.batch(step)
        mine = batch[rank * share : (rank + 1) * share]
        images = [trainset.image(item) for item in mine]
        if recipe.train_images == "black":
            images = [torch.zeros_like(px) for px in images]
        contexts = [item.context for item in mine] if any(item.context for item in batch) else None
        return images, [item.target for item in mine], contexts, [item.target for item in batch]

    if start >= recipe.steps:
        return
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(load, start)
        for step in range(start, recipe.steps):
            images, texts, contexts, whole_batch = pending.result()
            if step + 1 < recipe.steps:
                pending = worker.submit(load, step + 1)
            # Tokenised here, not in the worker: a tokenizer is not safe to share between threads.
            yield images, texts, contexts, model.target_tokens(whole_batch)
