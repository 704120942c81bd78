"""Where a model comes from, as one interface: every caller asks a ``ModelSource``, never which kind it is.

Four sources implement it:

- a registry model this harness trains (``harness.models.spec.ModelSpec``): loaded from its checkpoint, or
  trained now;
- a ``--checkpoint`` weights file trained elsewhere (a ``ModelSpec`` with ``weights``): loaded, never trained;
- a model class of one's own (``file.py:Class`` or an entry point) and ``hf:<id>`` (both
  ``harness.models.external.ExternalSpec``): constructed, never trained.

A source is cheap to make (it finds files and loads no weights); ``load`` makes the model.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ModelSource(Protocol):
    @property
    def name(self) -> str:
        """The model's name as tables show it."""

    @property
    def fingerprint(self) -> str:
        """A hash of everything that decides the model's answers: it keys its checkpoint and its runs."""

    @property
    def family(self) -> str:
        """The fingerprint less the training seed: models that differ only in it are seeds of one table row."""

    @property
    def train_seed(self) -> int | None:
        """The seed it was trained with here (None: trained elsewhere, if at all)."""

    @property
    def folder_name(self) -> str:
        """The folder its runs are kept in, under each task's."""

    @property
    def eval_images(self) -> str:
        """The image condition ``--images recipe`` means for it."""

    @property
    def trains(self) -> bool:
        """Whether this harness trains it (then it has a recipe, training data and a checkpoint folder)."""

    def split_lm_refusal(self) -> str:
        """Why its LM may not be split over devices (``--lm-device-map``), as one line; "" when it may."""

    def describe(self) -> dict[str, Any]:
        """What the run records say about the model."""

    def load(self, device: str | None, lm_device_map: str | dict | None = None, progress: bool = True,
             train_missing: bool = True, precision: str = "auto") -> tuple[Any, ModelSource]:  # fmt: skip
        """(model, source) ready to evaluate, the source now with what only the loaded model tells (a model of
        one's own: its identity). A model this harness trains is loaded from its checkpoint, else trained now
        (``train_missing``), else refused. ``precision``: auto, fp32 or bf16 (``harness.precision``)."""
