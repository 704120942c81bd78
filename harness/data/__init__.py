"""Data sources by key. Each gives VQA rows per split, training captions, and images as uint8 tensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from harness.errors import HarnessError


@dataclass(frozen=True)
class Row:
    """One evaluation query, of any task kind.

    vqa: ``question`` and the human ``answers`` (10 in VQAv2; a single answer is repeated).
    caption: ``answers`` are the reference captions. naming: ``answers`` is the class name, and
    ``support`` the episode's solved examples as (image key, name) in prompt order, with the
    optional task-induction text in ``induction``.
    """

    id: str
    image: str
    question: str = ""
    answers: tuple[str, ...] = ()
    answer_type: str = ""
    question_type: str = ""
    support: tuple[tuple[str, str], ...] = ()
    induction: str = ""


@dataclass(frozen=True)
class Caption:
    image: str
    text: str


def read_image(path: Path) -> torch.Tensor:
    """Decode an image file to uint8 H x W x 3 (palette, grey and alpha images converted to RGB)."""
    try:
        with PILImage.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "P"):
                background = PILImage.new("RGB", im.size, (255, 255, 255))
                rgba = im.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                im = background
            return torch.from_numpy(np.asarray(im.convert("RGB")).copy())
    except FileNotFoundError:
        raise HarnessError(f"{path}: image file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise HarnessError(f"{path}: cannot decode image ({exc})") from None


@dataclass
class Dataset:
    """A built data source: rows by split, captions by split, images by key (decoded once, kept)."""

    name: str
    version: str  # goes into fingerprints: package version and checksums of the files read
    splits: dict[str, list[Row]]
    captions: dict[str, list[Caption]]
    image_paths: dict[str, Path] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    classes: dict[str, list[str]] = field(default_factory=dict)  # naming sources: class name -> image keys

    def image(self, key: str) -> torch.Tensor:
        if key not in self.images:
            if key not in self.image_paths:
                raise HarnessError(f"dataset {self.name}: no image '{key}'")
            self.images[key] = read_image(self.image_paths[key])
        return self.images[key]

    def rows(self, split: str) -> list[Row]:
        if split not in self.splits:
            raise HarnessError(f"dataset {self.name}: no split '{split}' (has {', '.join(self.splits)})")
        return self.splits[split]


_CACHE: dict[str, Dataset] = {}


def sources() -> dict[str, Callable[[], Dataset]]:
    from harness.data import easyvqa, tiny

    return {"easyvqa": easyvqa.load, "tiny-shapes": tiny.load}


def load(name: str) -> Dataset:
    """The data source ``name``, loaded once per process."""
    from harness.errors import unknown_name

    if name not in _CACHE:
        loaders = sources()
        if name not in loaders:
            raise unknown_name("data source", name, loaders)
        _CACHE[name] = loaders[name]()
    return _CACHE[name]
