"""What every data source gives: evaluation rows, training captions, and images by key.

Plain dataclasses with no torch at import, so the commands that only read results start fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data.files import decode_image
from harness.errors import HarnessError

if TYPE_CHECKING:  # torch is imported where images are decoded
    import torch


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
    """Decode an image file to uint8 H x W x 3 RGB (every mode converted: see ``files.to_rgb``).

    Raises ``BadImage`` (a HarnessError naming the file and the reason) for a missing, empty,
    truncated, corrupt or oversized file; ``files.check_image(path)`` gives the reason without raising.
    """
    return decode_image(path, path)


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
    image_loader: Callable[[str], torch.Tensor] | None = None  # for keys not in image_paths (images in a table)
    # Text for images that have no caption, for `--images caption` only (never trained on): what the source
    # knows of them, e.g. an easy-vqa image whose questions name its colour but not its shape.
    descriptions: dict[str, str] = field(default_factory=dict)
    # The source's official validation split, where its tasks test on another one (COCO's Karpathy val): its dev
    # split. None named: a seeded part of the training images is (``harness.data.dev``).
    dev_split: str = ""
    # A dev view's dev images (``harness.data.dev.dev_view``): set apart from training and from few-shot support.
    held_out: frozenset[str] = frozenset()

    def image(self, key: str) -> torch.Tensor:
        if key not in self.images:
            if key in self.image_paths:
                self.images[key] = read_image(self.image_paths[key])
            elif self.image_loader is not None:
                self.images[key] = self.image_loader(key)
            else:
                raise HarnessError(f"dataset {self.name}: no image '{key}'")
        return self.images[key]

    def rows(self, split: str) -> list[Row]:
        if split not in self.splits:
            raise HarnessError(f"dataset {self.name}: no split '{split}' (has {', '.join(self.splits)})")
        return self.splits[split]

    def classes_from(self, groups: Iterable[str]) -> dict[str, list[str]]:
        """The class map restricted to images of some groups, a group being the first part of an image
        key ("google" in "google/grinning_face"): support drawn by some emoji vendors, queries by another."""
        wanted = list(groups)
        present = {key.split("/", 1)[0] for keys in self.classes.values() for key in keys}
        missing = [g for g in wanted if g not in present]
        if missing:
            raise HarnessError(f"dataset {self.name}: no images from '{missing[0]}' (has {', '.join(sorted(present))})")
        chosen = {name: [k for k in keys if k.split("/", 1)[0] in wanted] for name, keys in self.classes.items()}
        return {name: keys for name, keys in chosen.items() if keys}
