"""Image encoders through timm: one API for every backbone, pooled features out (``num_classes=0``)."""

from __future__ import annotations

import logging

from torch import nn

from harness.config import EncoderSpec
from harness.errors import HarnessError

log = logging.getLogger(__name__)


def build(spec: EncoderSpec) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...]]:
    """(encoder returning pooled features, normalisation mean, std) for 0..1 pixels."""
    import timm

    if spec.weights == "efficientnet-lite0-package":
        from harness.models import effnet_lite0

        try:
            model = effnet_lite0.build_timm_efficientnet_lite0(num_classes=0)
        except (ImportError, FileNotFoundError):
            raise HarnessError(f"encoder '{spec.key}' weights are not installed: run `{spec.install}`") from None
        mean, std = effnet_lite0.PACKAGE_MEAN_STD
        return model, tuple(mean), tuple(std)
    if spec.weights == "timm-hub":
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
    raise HarnessError(f"encoder '{spec.key}': unknown weights source '{spec.weights}'")
