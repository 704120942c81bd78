"""Data sources: easyvqa caption derivation, the tiny twin, image decoding of awkward files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.data import easyvqa
from harness.data.sources import load
from harness.data.types import read_image
from harness.errors import HarnessError


@pytest.mark.parametrize(
    "question, answer, expected",
    [
        ("what color is the circle?", "blue", {"color": "blue", "shape": "circle"}),
        ("what is the red shape?", "triangle", {"color": "red", "shape": "triangle"}),
        ("what shape is present?", "rectangle", {"shape": "rectangle"}),
        ("is there a red shape?", "yes", {"color": "red"}),
        ("is there a red shape?", "no", {}),
        ("is there not a circle in the image?", "no", {"shape": "circle"}),
        ("is no gray shape present?", "no", {"color": "gray"}),
        ("does the image not contain a teal shape?", "yes", {}),
    ],
)
def test_easyvqa_attributes(question, answer, expected):
    assert easyvqa.attributes(question, answer) == expected


def test_easyvqa_builds_captions_that_agree_with_every_question():
    d = load("easyvqa")
    assert len(d.rows("test")) == 9673 and len(d.rows("train")) == 38575
    captions = {c.image: c.text for c in d.captions["train"]}
    assert len(captions) > 3000
    for row in d.rows("train")[:2000]:
        if row.image in captions and row.answers[0] not in ("yes", "no"):
            assert row.answers[0] in captions[row.image]
    assert d.image("test/0").shape == (64, 64, 3)


def test_tiny_shapes_is_deterministic_and_balanced():
    d = load("tiny-shapes")
    assert len(d.rows("test")) == 240 and len(d.captions["train"]) == 240
    from harness.data import tiny

    again = tiny.load()
    assert all((again.image(k) == d.image(k)).all() for k in list(d.images)[:20])
    answers = {r.answers[0] for r in d.rows("test")}
    assert {"yes", "no"} <= answers and len(answers) > 8


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "LA", "CMYK", "I;16"])
def test_read_image_converts_every_mode_to_rgb(tmp_path, mode):
    path = tmp_path / f"x.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
    Image.new("RGB", (5, 4), (200, 100, 50)).convert(mode).save(path)
    px = read_image(path)
    assert px.shape == (4, 5, 3) and str(px.dtype) == "torch.uint8"


def test_transparent_pixels_become_white(tmp_path):
    arr = np.zeros((2, 2, 4), dtype=np.uint8)
    arr[0, 0] = (255, 0, 0, 255)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    px = read_image(tmp_path / "a.png")
    assert px[0, 0].tolist() == [255, 0, 0] and px[1, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_unreadable_images_are_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(HarnessError, match="bad.jpg: cannot decode image"):
        read_image(path)
    with pytest.raises(HarnessError, match="image file not found"):
        read_image(tmp_path / "missing.png")
