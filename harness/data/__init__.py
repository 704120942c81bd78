"""Data sources by key. Each gives VQA rows per split, training captions, and images as uint8 tensors."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data.files import check_image, decode_image
from harness.errors import BadImage, HarnessError

if TYPE_CHECKING:  # torch is imported where images are decoded, so `harness table` starts without it
    import torch

__all__ = ["BadImage", "Caption", "Dataset", "Row", "Source", "check_image", "load", "read_image", "sources"]


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
    truncated, corrupt or oversized file; ``check_image(path)`` gives the reason without raising.
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


_CACHE: dict[str, Dataset] = {}


def _from_env(variable: str, build: Callable[[Path], Dataset], what: str) -> Callable[[], Dataset]:
    def load() -> Dataset:
        folder = os.environ.get(variable)
        if not folder:
            raise HarnessError(f"set {variable} to {what}")
        return build(Path(folder))

    return load


@dataclass(frozen=True)
class Source:
    """A data source: how to load it, and a cheap check of whether it is on this machine."""

    load: Callable[[], Dataset]
    available: Callable[[], str]
    load_hub: Callable[..., Dataset] | None = None  # for a task's `hub:` mapping (dataset_id, splits, columns)


def _env_available(variable: str) -> Callable[[], str]:
    return lambda: "yes" if os.environ.get(variable) and Path(os.environ[variable]).exists() else f"no: set {variable}"


def _module_available(module: str, install: str) -> Callable[[], str]:
    return lambda: "yes" if importlib.util.find_spec(module) else f"no: {install}"


def _needs_mapping(name: str) -> Callable[[], Dataset]:
    def load() -> Dataset:
        raise HarnessError(f"data source {name} needs a task with a `hub:` mapping (dataset_id, splits, columns)")

    return load


def sources() -> dict[str, Source]:
    from harness.data import coco, easyvqa, folders, offline, tiny, vqa_official

    hub = lambda: "from the hub (or its cache)"
    mini = "a folder with one sub-folder of images per class (e.g. miniImageNet's test classes)"
    frozen = "the folder of Frozen's released episode files (open_ended_mi or real_name_mi)"
    return {
        "tiny-shapes": Source(tiny.load, lambda: "yes (generated)"),
        "easyvqa": Source(easyvqa.load, _module_available("easy_vqa", easyvqa.INSTALL)),
        "vqav2": Source(vqa_official.load_vqav2, _env_available(vqa_official.ENV_VQAV2)),
        "okvqa": Source(vqa_official.load_okvqa, _env_available(vqa_official.ENV_OKVQA)),
        "vqa-hub": Source(_needs_mapping("vqa-hub"), hub, vqa_official.load_hub),
        "coco": Source(coco.load_coco_from_env, _env_available(coco.ENV_DIR)),
        "caption-hub": Source(_needs_mapping("caption-hub"), hub, coco.load_hub),
        "miniimagenet": Source(
            _from_env("HARNESS_MINIIMAGENET_DIR", lambda p: folders.load_class_folders(p, "miniimagenet"), mini),
            _env_available("HARNESS_MINIIMAGENET_DIR"),
        ),
        "frozen-episodes": Source(
            _from_env(
                "HARNESS_FROZEN_EPISODES_DIR", lambda p: folders.load_frozen_episodes(p, "frozen-episodes")[0], frozen
            ),
            _env_available("HARNESS_FROZEN_EPISODES_DIR"),
        ),
        "emoji": Source(offline.load_emoji, lambda: offline.availability("emoji")),
        "tuxpaint": Source(offline.load_tuxpaint, lambda: offline.availability("tuxpaint")),
    }


def load(name: str, hub: dict | None = None) -> Dataset:
    """The data source ``name`` (for hub sources, with a task's ``hub`` mapping), loaded once per process."""
    import json

    from harness.errors import unknown_name

    key = f"{name}|{json.dumps(hub, sort_keys=True)}" if hub else name
    if key not in _CACHE:
        known = sources()
        if name not in known:
            raise unknown_name("data source", name, known)
        source = known[name]
        if hub and source.load_hub is None:
            raise HarnessError(f"data source {name} takes no `hub:` mapping")
        _CACHE[key] = source.load_hub(**hub, name=name) if hub else source.load()
    return _CACHE[key]
