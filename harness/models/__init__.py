"""From a model name to a built VisualPrefixModel: ``smollm2-135m-frozen`` -> LM + recipe + encoder.

A ModelSpec is everything that decides the trained weights; its fingerprint keys the checkpoint
store, so a changed recipe, LM file or training set never reuses a stale checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from harness import paths, registry
from harness.config import EncoderSpec, Recipe, replace_fields
from harness.errors import HarnessError
from harness.models import lms
from harness.models.prefix import VisualPrefixModel

# Recipe fields that change how training is run, not what it produces.
_NOT_FINGERPRINTED = ("description", "save_every")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    lm: lms.ResolvedLM
    recipe: Recipe
    encoder: EncoderSpec
    data_version: str
    weights: str = ""  # --checkpoint: a safetensors file of weights trained elsewhere (then never trained here)
    weights_sha256: str = ""
    external = False  # built by the harness (see harness.models.external for models that are not)

    @property
    def fingerprint(self) -> str:
        recipe = {k: v for k, v in dataclasses.asdict(self.recipe).items() if k not in _NOT_FINGERPRINTED}
        described = {
            "lm": self.lm.identity,
            "encoder": dataclasses.asdict(self.encoder),
            "recipe": recipe,
            "train_data": self.data_version,
        }
        if self.weights_sha256:  # only then: the fingerprints of models trained here stay what they were
            described["weights"] = self.weights_sha256
        return paths.fingerprint(described)

    @property
    def eval_images(self) -> str:
        return self.recipe.eval_images

    @property
    def folder_name(self) -> str:
        return self.name

    @property
    def checkpoint_dir(self):
        return paths.home() / "checkpoints" / f"{self.lm.spec.key}-{self.recipe.name}-{self.fingerprint}"

    def describe(self) -> dict[str, Any]:
        described = {
            "name": self.name,
            "lm": self.lm.spec.key,
            "lm_identity": self.lm.identity,
            "recipe": dataclasses.asdict(self.recipe),
            "encoder": self.encoder.key,
            "train_data_version": self.data_version,
            "fingerprint": self.fingerprint,
        }
        if self.weights:
            described["weights"] = {"file": self.weights, "sha256": self.weights_sha256}
        return described


def resolve(name: str, overrides: dict[str, Any] | None = None, lm_path: str | None = None, checkpoint: str | None = None):
    """Parse and resolve a model name (cheap: finds files, loads no weights): a ModelSpec, or for a
    model from outside the registry (``file.py:Class``, an entry point, ``hf:...``) an ExternalSpec,
    whose ``--set`` values are constructor arguments."""
    from harness import data
    from harness.models import external

    if external.is_external(name):
        if lm_path or checkpoint:
            raise HarnessError(f"--model {name}: --lm-path and --checkpoint are for the harness's own <lm>-<recipe> models")
        return external.resolve(name, overrides)
    parsed = registry.parse_model_name(name)
    recipe = parsed.recipe
    if overrides:
        recipe = replace_fields(recipe, overrides, f"--set for recipe '{recipe.name}'")
    encoder = registry.ENCODERS.get(recipe.encoder)
    resolved = lms.resolve(parsed.lm, lm_path)
    # The canonical name, so an alias ("smollm2-frozen") shares run records with its full name.
    canonical = f"{parsed.lm.key}-{parsed.recipe.name}"
    if checkpoint:
        from pathlib import Path

        path = Path(checkpoint)
        if not path.is_file():
            raise HarnessError(f"--checkpoint {checkpoint}: no such file")
        # Named after its file, so tables never show it as the model this harness trained.
        return ModelSpec(f"{canonical}@{external.safe_name(path.stem)}", resolved, recipe, encoder,
                         data.load(recipe.train_data).version, str(path.resolve()), paths.file_sha256(path))  # fmt: skip
    return ModelSpec(canonical, resolved, recipe, encoder, data.load(recipe.train_data).version)


def pick_device(name: str | None = None) -> torch.device:
    """``None``/"auto": the GPU when there is one, else the CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HarnessError(f"--device: unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"--device {name}: no CUDA GPU is visible to torch here")
    return device


def build(spec: ModelSpec, device: str | None = None, lm_device_map: str | dict | None = None) -> VisualPrefixModel:
    """The untrained model: LM (pretrained or, for `scratch`, freshly initialised), encoder, prefix map.

    ``lm_device_map``: the LM is loaded split by accelerate (``lms.load``) and stays where it was put;
    the encoder and prefix map go to the device of the LM's input embeddings."""
    from harness.models import encoders

    recipe = spec.recipe
    if lm_device_map is not None and recipe.train_lm:
        raise HarnessError(f"--lm-device-map: {spec.name} trains its LM; a split LM is for frozen LMs only")
    lm, tokenizer = lms.load(spec.lm, random_init=recipe.lm_init == "random", seed=recipe.seed, device_map=lm_device_map)
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
        return model.to(pick_device(device)).eval().tune_for_device()
    target = model.lm.get_input_embeddings().weight.device
    if target.type == "meta":  # the embeddings offloaded to disk: run the rest where asked
        target = pick_device(device)
    for child in model.children():
        if child is not model.lm:
            child.to(target)
    for name, buffer in list(model.named_buffers(recurse=False)):
        setattr(model, name, buffer.to(target))
    return model.eval().tune_for_device()


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
