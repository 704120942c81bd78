"""A model name resolved: ``smollm2-135m-frozen`` -> LM + recipe + encoder + training data, no weights loaded.

A ModelSpec is everything that decides the trained weights; its fingerprint keys the checkpoint
store, so a changed recipe, LM file or training set never reuses a stale checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from harness import paths, registry
from harness.config import EncoderSpec, Recipe
from harness.errors import HarnessError
from harness.models import lms
from harness.models.source import ModelSource

log = logging.getLogger("harness")

# Recipe fields that change how training is run, not what it produces.
_NOT_FINGERPRINTED = ("description", "save_every")
# Recipe fields added later: fingerprinted only when set away from their defaults, so the models trained before
# they existed keep their fingerprints and checkpoints.
_LATER_FIELDS = ("pairs", "loss_on", "pair_separator", "caption_style", "train_mix", "aux_embed", "lr_schedule",
                 "train_text", "pair_repeat", "lr_encoder", "lr_map", "lr_lm", "question_types")  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    name: str
    lm: lms.ResolvedLM
    recipe: Recipe
    encoder: EncoderSpec
    data_version: str
    weights: str = ""  # --checkpoint: a safetensors file of weights trained elsewhere (then never trained here)
    weights_sha256: str = ""

    @property
    def fingerprint(self) -> str:
        return paths.fingerprint(self._described())

    @property
    def family(self) -> str:
        """The fingerprint of everything but the recipe's seed: models that differ only in their training seed
        are seeds of one row in the tables."""
        described = self._described()
        del described["recipe"]["seed"]
        return paths.fingerprint(described)

    @property
    def train_seed(self) -> int | None:
        return self.recipe.seed

    def _described(self) -> dict[str, Any]:
        defaults = {f.name: f.default for f in dataclasses.fields(self.recipe) if f.name in _LATER_FIELDS}
        recipe = {k: v for k, v in dataclasses.asdict(self.recipe).items()
                  if k not in _NOT_FINGERPRINTED and not (k in defaults and v == defaults[k])}  # fmt: skip
        described = {
            "lm": self.lm.identity,
            "encoder": dataclasses.asdict(self.encoder),
            "recipe": recipe,
            "train_data": self.data_version,
        }
        if self.weights_sha256:  # only then: the fingerprints of models trained here stay what they were
            described["weights"] = self.weights_sha256
        return described

    @property
    def eval_images(self) -> str:
        return self.recipe.eval_images

    @property
    def folder_name(self) -> str:
        return self.name

    @property
    def checkpoint_dir(self):
        return paths.home() / "checkpoints" / f"{self.lm.spec.key}-{self.recipe.name}-{self.fingerprint}"

    @property
    def trains(self) -> bool:
        """Trained here, unless its weights came from a file trained elsewhere (``--checkpoint``)."""
        return not self.weights

    def split_lm_refusal(self) -> str:
        if self.recipe.train_lm:
            return f"--lm-device-map: {self.name} trains its LM; a split LM is for frozen LMs only"
        return ""

    def load(self, device: str | None, lm_device_map: str | dict | None = None, progress: bool = True,
             train_missing: bool = True, precision: str = "auto") -> tuple[Any, ModelSpec]:  # fmt: skip
        """(model, self): the ``--checkpoint`` file's weights, or the trained checkpoint (its file read once), else
        (``train_missing``) the model trained now, from where an unfinished training stopped."""
        from harness import distributed
        from harness import precision as precisions
        from harness.models import loading
        from harness.training import checkpoint

        if self.weights:
            with distributed.main_first():
                return loading.load_weights_file(self, device, lm_device_map, precision), self
        with distributed.main_first():  # a one-time LM conversion happens once, on rank 0
            saved = checkpoint.load(self.checkpoint_dir, self.fingerprint)
            if saved is not None and saved.step >= self.recipe.steps:
                log.info("loaded the trained checkpoint of %s (fingerprint %s)", self.name, self.fingerprint)
                return loading.from_checkpoint(self, saved, device, lm_device_map, precision), self
        if not train_missing:
            raise HarnessError(
                f"no trained checkpoint for {self.name} (fingerprint {self.fingerprint}): "
                f"run `harness train --model {self.name}` first, or `harness run`"
            )
        loading.check_trainable(self, lm_device_map)
        from harness.training.train import train

        log.info("no trained checkpoint for %s (fingerprint %s): training it now", self.name, self.fingerprint)
        model = train(self, progress, device, precision, looked=(saved,))
        if model.precision == precisions.resolve(model.device, precision, evaluation=True)[0]:
            return model.tune_for_device(precision, evaluation=True), self  # the same arithmetic, said as evaluation's
        # Trained at another precision than it evaluates at (bf16 stored the frozen LM's weights in bf16 for good):
        # built again from the checkpoint just written, as a later run would load it.
        return loading.from_checkpoint(self, checkpoint.load(self.checkpoint_dir, self.fingerprint), device,
                                       lm_device_map, precision), self  # fmt: skip

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


def resolve(
    name: str,
    overrides: dict[str, Any] | None = None,
    lm_path: str | None = None,
    checkpoint: str | None = None,
    recipe_set: dict[str, Any] | None = None,
) -> ModelSource:
    """Parse and resolve a model name (cheap: finds files, loads no weights): a ModelSpec, or for a
    model from outside the registry (``file.py:Class``, an entry point, ``hf:...``) an ExternalSpec,
    whose ``--set`` values are constructor arguments. ``recipe_set``: recipe overrides under ``overrides``
    for a model with a recipe (a grid's ``set``), not passed to a model of one's own."""
    from harness.models import external

    if external.is_external(name):
        if lm_path or checkpoint:
            raise HarnessError(
                f"--model {name}: --lm-path and --checkpoint are for the harness's own <lm>-<recipe> models"
            )
        return external.resolve(name, overrides)
    overrides = {**(recipe_set or {}), **(overrides or {})}
    parsed = registry.parse_model_name(name)
    recipe = registry.resolve_recipe(parsed.recipe.name, overrides)
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
                         train_data_version(recipe), str(path.resolve()), paths.file_sha256(path))  # fmt: skip
    return ModelSpec(canonical, resolved, recipe, encoder, train_data_version(recipe))


def train_data_version(recipe) -> str:
    """The version of what the recipe trains on: train_data's, then each train_mix source's
    (``<v>+emoji:0.5=<v2>``), each with the rule that set its dev images apart from training (``-dev:...``)."""
    from harness.data import dev, sources
    from harness.training.trainset import check_question_types

    check_question_types(recipe)

    def of(name: str) -> str:
        dataset = sources.load(name)
        return dataset.version + dev.holdout_tag(dataset)

    version = of(recipe.train_data)
    for item, (name, _) in zip(recipe.train_mix, recipe.mix()):
        version += f"+{item}={of(name)}"
    return version
