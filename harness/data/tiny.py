"""tiny-shapes: an easyvqa twin generated in well under a second, for unit tests and CI.

Each image is one coloured circle, rectangle or triangle on white, drawn at a seeded random place and
size; each gets four questions (its colour, its shape, and a yes/no question about each), a caption, and
a class ("red circle") for the naming protocol.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw

from harness.data.shapes import COLORS, SHAPES, answer_type, caption, question_type
from harness.data.sources import SOURCES, Source, generated
from harness.data.types import Caption, Dataset, Row

SIZE = 32
SPLITS = {"train": 240, "test": 60}
RGB = {
    "red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (235, 210, 20),
    "teal": (20, 150, 150), "brown": (130, 80, 30), "gray": (128, 128, 128), "black": (10, 10, 10),
}  # fmt: skip
VERSION = "tiny-shapes-1"


def draw(color: str, shape: str, rng: random.Random) -> torch.Tensor:
    im = PILImage.new("RGB", (SIZE, SIZE), (255, 255, 255))
    pen = ImageDraw.Draw(im)
    r = rng.randint(7, 12)
    cx, cy = rng.randint(r, SIZE - r - 1), rng.randint(r, SIZE - r - 1)
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=RGB[color])
    elif shape == "rectangle":
        pen.rectangle((cx - r, cy - r * 2 // 3, cx + r, cy + r * 2 // 3), fill=RGB[color])
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=RGB[color])
    return torch.from_numpy(np.asarray(im).copy())


def load() -> Dataset:
    rng = random.Random(0)
    splits, captions, images, classes = {}, {}, {}, {}
    for split, count in SPLITS.items():
        rows, caps = [], []
        for n in range(count):
            key = f"{split}/{n}"
            color, shape = rng.choice(COLORS), rng.choice(SHAPES)
            images[key] = draw(color, shape, rng)
            caps.append(Caption(key, caption(color, shape)))
            classes.setdefault(f"{color} {shape}", []).append(key)
            other_color, other_shape = rng.choice(COLORS), rng.choice(SHAPES)
            qa = [
                ("what color is the shape?", color),
                ("what shape is in the image?", shape),
                (f"is there a {other_color} shape?", "yes" if other_color == color else "no"),
                (f"does the image contain a {other_shape}?", "yes" if other_shape == shape else "no"),
            ]
            for i, (q, a) in enumerate(qa):
                rows.append(Row(f"{split}-{n}-{i}", key, q, (a,) * 10, answer_type(a), question_type(a)))
        splits[split], captions[split] = rows, caps
    return Dataset("tiny-shapes", VERSION, splits, captions, images=images, classes=classes)


SOURCES.add("tiny-shapes", Source(load, generated))
