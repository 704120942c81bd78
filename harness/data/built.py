"""The datasets ``harness data build`` made (``harness.data.offline``), read back: each build's manifest and
file checksums checked, its ``datasets`` table opened, its images decoded on use; the ``emoji``, ``emoji6``
and ``tuxpaint`` sources.

emoji and emoji6 (the same layout, three vendors or six): classes {concept: image keys of every vendor};
captions "a grinning face." per image, twitter's images in test and every other vendor's in train
(captioning and naming queries use a drawing style never trained on). tuxpaint: caption rows per split,
one reference each (the stamp's English caption).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import paths
from harness.data.files import decode_image_cell, safe_join
from harness.data.sources import SOURCES, Source
from harness.data.types import Caption, Dataset, Row
from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

FORMAT = 1  # bump when the built tables change meaning, so old builds are rebuilt
EMOJI_TEST_VENDORS = ("twitter",)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_hint(name: str, force: bool = False) -> str:
    return f"run `python -m harness data build {name}{' --force' if force else ''}`"


def valid_manifest(folder: Path, name: str) -> dict:
    """The manifest of a complete build whose files match their recorded checksums."""
    rebuild_hint = build_hint(name, force=True)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise HarnessError(f"data source {name} is not built: {build_hint(name)}") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{folder / 'manifest.json'}: unreadable ({exc}): {rebuild_hint}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not manifest.get("files"):
        raise HarnessError(f"{folder}: built by another version of the harness: {rebuild_hint}")
    files, version, options = manifest["files"], manifest.get("version"), manifest.get("options")
    if not isinstance(files, dict) or not isinstance(version, str) or not isinstance(options, dict):
        raise HarnessError(f"{folder / 'manifest.json'}: 'files', 'version' or 'options' malformed: {rebuild_hint}")
    for rel, expected in files.items():
        path = safe_join(folder, rel, f"{folder / 'manifest.json'}: files", "built file")
        if not path.is_file():
            raise HarnessError(f"{folder}: built file {rel} is missing: {rebuild_hint}")
        if sha256_of(path) != expected:
            raise HarnessError(
                f"{folder}: built file {rel} does not match its checksum in manifest.json: {rebuild_hint}"
            )
    return manifest


def open_built(name: str) -> tuple[Any, dict]:
    import datasets

    folder = paths.home() / "data" / name
    manifest = valid_manifest(folder, name)
    try:
        return datasets.load_from_disk(str(folder / "table")), manifest
    except Exception as exc:  # noqa: BLE001 - a table datasets cannot read is a bad build, told in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"{folder}: cannot read the built table ({first}): {build_hint(name, force=True)}") from None


def image_loader(name: str, table: Any, locations: dict[str, int]) -> Callable[[str], torch.Tensor]:
    import datasets

    images = table.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))

    def load(key: str) -> torch.Tensor:
        if key not in locations:
            raise HarnessError(f"dataset {name}: no image '{key}'")
        return decode_image_cell(images[locations[key]]["image"], f"dataset {name} image '{key}'")

    return load


def emoji_key(vendor: str, short_name: str, skin_tone: str) -> str:
    return f"{vendor}/{short_name}{'-' + skin_tone if skin_tone else ''}"


def _sentence(concept: str) -> str:
    return f"{'an' if concept[:1] in 'aeiou' else 'a'} {concept}."


def load_emoji(name: str = "emoji") -> Dataset:
    """Classes {concept: image keys of every vendor}; captions "a grinning face." per image, twitter's images
    in test, every other vendor's in train. No rows: naming episodes come from the classes. ``name``: the
    build under ``$HARNESS_HOME/data/`` to read (emoji6 and tiny-emoji, emoji's tiny twin, have the same layout)."""
    table, manifest = open_built(name)
    cols = table.select_columns(["concept", "short_name", "vendor", "skin_tone"]).to_dict()
    classes: dict[str, list[str]] = {}
    captions: dict[str, list[Caption]] = {"train": [], "test": []}
    locations: dict[str, int] = {}
    for index, (concept, short_name, vendor, tone) in enumerate(
        zip(cols["concept"], cols["short_name"], cols["vendor"], cols["skin_tone"])
    ):
        key = emoji_key(vendor, short_name, tone)
        locations[key] = index
        classes.setdefault(concept, []).append(key)
        captions["test" if vendor in EMOJI_TEST_VENDORS else "train"].append(Caption(key, _sentence(concept)))
    loader = image_loader(name, table, locations)
    return Dataset(name, manifest["version"], {}, captions, classes=classes, image_loader=loader)


def load_tuxpaint(name: str = "tuxpaint") -> Dataset:
    """Caption rows per split (one reference: the stamp's English caption) and training captions.
    ``name``: the build under ``$HARNESS_HOME/data/`` to read (tiny-tuxpaint, its tiny twin, has the same layout)."""
    table, manifest = open_built(name)
    cols = table.select_columns(["key", "caption", "split"]).to_dict()
    splits: dict[str, list[Row]] = {"train": [], "test": []}
    captions: dict[str, list[Caption]] = {"train": [], "test": []}
    locations: dict[str, int] = {}
    for index, (key, caption, split) in enumerate(zip(cols["key"], cols["caption"], cols["split"])):
        locations[key] = index
        splits[split].append(Row(id=key, image=key, answers=(caption,), answer_type="caption"))
        captions[split].append(Caption(key, caption))
    loader = image_loader(name, table, locations)
    return Dataset(name, manifest["version"], splits, captions, image_loader=loader)


def availability(name: str) -> str:
    """'yes' when ``name`` is built under the harness home, else the command that builds it (cheap)."""
    built = (paths.home() / "data" / name / "manifest.json").exists()
    return "yes (built)" if built else f"no: python -m harness data build {name}"


def missing(name: str) -> list[str]:
    """One line when ``name`` is not built under the harness home (its files are checked when it loads)."""
    folder = paths.home() / "data" / name
    if (folder / "manifest.json").exists():
        return []
    return [f"data source {name} is not built (expected in {folder}): {build_hint(name)}, which fetches its "
            "packages from their registries (npm, apt)"]  # fmt: skip


SOURCES.add("emoji", Source(load_emoji, lambda: availability("emoji"), missing=lambda: missing("emoji")))
SOURCES.add(
    "emoji6", Source(lambda: load_emoji("emoji6"), lambda: availability("emoji6"), missing=lambda: missing("emoji6"))
)
SOURCES.add("tuxpaint", Source(load_tuxpaint, lambda: availability("tuxpaint"), missing=lambda: missing("tuxpaint")))
