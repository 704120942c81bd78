"""Building and loading models: an untrained VisualPrefixModel from its spec, a trained one from its
checkpoint or from a weights file trained elsewhere, and the rules of where a model may be put
(``--device``, ``--lm-device-map``), checked here before anything loads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from harness import distributed
from harness.config import Recipe
from harness.errors import HarnessError
from harness.models import lms
from harness.models.devices import pick_device
from harness.models.prefix import VisualPrefixModel
from harness.training import checkpoint

if TYPE_CHECKING:  # the spec loads its model through this module
    from harness.models.source import ModelSource
    from harness.models.spec import ModelSpec

log = logging.getLogger(__name__)


def build(spec: ModelSpec, device: str | None = None, lm_device_map: str | dict | None = None,
          precision: str = "auto", evaluation: bool = False) -> VisualPrefixModel:  # fmt: skip
    """The untrained model: LM (pretrained or, for `scratch`, freshly initialised), encoder, prefix map, set to
    compute at ``precision`` (auto, fp32, bf16: ``harness.precision``; ``auto`` is fp32 for a model built to
    ``evaluation``, and what pays on the device for one built to train).

    ``lm_device_map``: the LM is loaded split by accelerate (``lms.load``) and stays where it was put;
    the encoder and prefix map go to the device of the LM's input embeddings."""
    from harness.models import encoders

    recipe = spec.recipe
    lm, tokenizer = lms.load(
        spec.lm, random_init=recipe.lm_init == "random", seed=recipe.seed, device_map=lm_device_map
    )
    encoder, mean, std = encoders.build(spec.encoder)
    suppress = [tokenizer.convert_tokens_to_ids(t) for t in spec.lm.spec.suppress_tokens]
    torch.manual_seed(recipe.seed)
    model = VisualPrefixModel(
        encoder,
        lm,
        tokenizer,
        n_prefix=recipe.n_prefix,
        image_size=recipe.image_size,
        image_mean=mean,
        image_std=std,
        add_bos=spec.lm.spec.add_bos,
        suppress_token_ids=[i for i in suppress if i is not None],
    )
    model.lm.requires_grad_(recipe.train_lm)
    model.encoder.requires_grad_(recipe.train_encoder)
    if lm_device_map is None:
        return model.to(pick_device(device)).eval().tune_for_device(precision, evaluation)
    target = model.lm.get_input_embeddings().weight.device
    if target.type == "meta":  # the embeddings offloaded to disk: run the rest where asked
        target = pick_device(device)
    for child in model.children():
        if child is not model.lm:
            child.to(target)
    for name, buffer in list(model.named_buffers(recurse=False)):
        setattr(model, name, buffer.to(target))
    return model.eval().tune_for_device(precision, evaluation)


def trainable_state(model: VisualPrefixModel, recipe: Recipe) -> dict[str, torch.Tensor]:
    """What a checkpoint holds: the parts the recipe trains, buffers (BatchNorm statistics) included."""
    parts = {"prefix_map": model.prefix_map}
    if recipe.train_encoder:
        parts["encoder"] = model.encoder
    if recipe.train_lm:
        parts["lm"] = model.lm
    state = {}
    for prefix, module in parts.items():
        for key, value in module.state_dict().items():
            state[f"{prefix}.{key}"] = value
    return state


def apply_state(model: VisualPrefixModel, state: dict[str, torch.Tensor]) -> None:
    """Load checkpointed parts into the model, restoring ties (an LM head stored once with its embedding)."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        groups.setdefault(prefix, {})[rest] = value
    for prefix, sub in groups.items():
        module = getattr(model, prefix)
        tied = tied_keys(module)
        missing, unexpected = module.load_state_dict(sub, strict=False)
        bad = [k for k in missing if k not in tied] + list(unexpected)
        if bad:
            raise HarnessError(f"checkpoint does not fit the model: {prefix}.{bad[0]} missing or unexpected")


def tied_keys(module: torch.nn.Module) -> set[str]:
    """State names that share storage with another (an LM head tied to the embedding): stored once."""
    by_storage: dict[int, list[str]] = {}
    for key, value in module.state_dict().items():
        by_storage.setdefault(value.data_ptr(), []).append(key)
    return {k for keys in by_storage.values() if len(keys) > 1 for k in keys}


def from_checkpoint(spec: ModelSpec, saved: checkpoint.Checkpoint, device: str | None = None,
                    lm_device_map: str | dict | None = None, precision: str = "auto") -> VisualPrefixModel:  # fmt: skip
    """The model with the weights of a checkpoint already read (``checkpoint.load``), to evaluate."""
    model = build(spec, device, lm_device_map, precision, evaluation=True)
    apply_state(model, saved.model)
    return model.eval()


def load_weights_file(spec: ModelSpec, device: str | None = None, lm_device_map: str | dict | None = None,
                      precision: str = "auto") -> VisualPrefixModel:  # fmt: skip
    """The model with the weights of ``spec.weights`` (``--checkpoint``), trained elsewhere: a safetensors
    file of the parts the recipe trains (``prefix_map.*``, and ``encoder.*`` / ``lm.*`` when the recipe
    trains them), or a checkpoint this harness wrote. Every name and shape is checked against the model
    first; a mismatch is one line naming the file, the tensor and both shapes; so is a tensor with a NaN or
    an infinite value."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = spec.weights
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"{path}: not a readable safetensors file ({reason})") from None
    if any(k.startswith("model/") for k in tensors):  # a checkpoint written by this harness
        tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
    checkpoint.check_finite(path, tensors, "these weights cannot answer; train them again or use another file")
    model = build(spec, device, lm_device_map, precision, evaluation=True)
    expected = trainable_state(model, spec.recipe)
    what = f"{spec.recipe.name} recipe of {spec.lm.spec.key} with {spec.encoder.key}, n_prefix {spec.recipe.n_prefix}"
    for key, value in sorted(tensors.items()):
        if key not in expected:
            part = key.partition(".")[0]
            why = (f"the {spec.recipe.name} recipe does not train the {part}" if part in ("encoder", "lm")
                   else "no such tensor in the model")  # fmt: skip
            raise HarnessError(f"{path}: tensor '{key}' does not fit the {what}: {why}")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise HarnessError(
                f"{path}: tensor '{key}' has shape {list(value.shape)}, the {what} expects {list(expected[key].shape)}"
            )
    tied = {f"lm.{k}" for k in tied_keys(model.lm)}
    missing = [k for k in expected if k not in tensors and k not in tied]
    if missing:
        raise HarnessError(f"{path}: no tensor '{missing[0]}' ({len(missing)} missing), which the {what} needs")
    apply_state(model, {k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return model.eval()


def device_map(value: str | None, spec: ModelSource) -> str | dict | None:
    """``--lm-device-map``: an accelerate strategy name, a JSON object, or a .json file of one; refused for a
    model whose LM trains, a model of one's own, and a launch of several processes."""
    if value is None:
        return None
    if refusal := spec.split_lm_refusal():
        raise HarnessError(refusal)
    if distributed.enabled():
        raise HarnessError(
            "--lm-device-map splits one LM over this process's devices: launch one process, not torchrun"
        )
    if value in ("auto", "balanced", "balanced_low_0", "sequential"):
        return value
    text, where = value, "--lm-device-map"
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value)
        if not path.is_file():
            raise HarnessError(f"--lm-device-map {value}: not auto/balanced/balanced_low_0/sequential, JSON or a file")
        text, where = path.read_text(encoding="utf-8", errors="replace"), str(path)
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as err:
        raise HarnessError(f"{where}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, (int, str)) for v in mapping.values()):
        raise HarnessError(f"{where}: expected a JSON object of module name -> device (a GPU index, 'cpu' or 'disk')")
    return mapping


def check_trainable(spec: ModelSpec, lm_device_map: str | dict | None) -> None:
    """A model about to be trained: a split LM (``--lm-device-map``) is for evaluation only."""
    if lm_device_map is not None:
        raise HarnessError(f"--lm-device-map is for evaluation: train {spec.name} first (`harness train`), then run")
