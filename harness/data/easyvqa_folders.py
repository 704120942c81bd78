"""easyvqa-folders: the easy-vqa test images as class folders, for Frozen's naming protocol on a class-folder
source read by the real class-folder loader (``harness.data.folders.load_class_folders``), offline.

``python -m harness data build easyvqa-folders`` copies each image of the easy-vqa package's **test** split
whose colour and shape its questions both name (``harness.data.easyvqa.attributes``) to
``$HARNESS_HOME/data/easyvqa-folders/<colour>_<shape>/<image id>.png``, and writes ``manifest.json`` beside
the folders: the package's version, the sha256 of every copied file and the counts. The test images, because
every easy-vqa recipe trains on the training split's captions: no support or query image was seen in training.
Loading checks every file against its checksum, and that no image was added, before the class-folder loader
reads the folders; the folder names ("red_circle") give the classes' real names and their descriptions
("a red circle.", for ``--images caption``).

The same layout, generated from tiny-shapes drawings, is the tiny twin ``tiny-easyvqa-folders``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
from collections import Counter
from pathlib import Path

from harness import paths
from harness.data.built import FORMAT, build_hint, sha256_of, valid_manifest
from harness.data.easyvqa import INSTALL, attributes
from harness.data.folders import load_class_folders
from harness.data.sources import SOURCES, Source
from harness.data.tiny_files import generated_folder
from harness.data.types import Dataset
from harness.errors import HarnessError

NAME = "easyvqa-folders"
log = logging.getLogger(__name__)


def class_folder(color: str, shape: str) -> str:
    return f"{color}_{shape}"


def save_folders(folder: Path, images: dict[str, bytes], manifest: dict, version: str) -> None:
    """Write ``images`` (path relative to ``folder`` -> bytes) and ``manifest.json``, to which the sha256 of
    every image (``files``), the counts and the version (``<version>:<hash of the checksums and options>``)
    are added. The tiny twin is written by it too."""
    for rel, data in sorted(images.items()):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    manifest["files"] = {rel: sha256_of(folder / rel) for rel in sorted(images)}
    sizes = Counter(rel.split("/", 1)[0] for rel in images)
    per_class = {"min": min(sizes.values(), default=0), "max": max(sizes.values(), default=0)}
    manifest["counts"] = {"images": len(images), "classes": len(sizes), "images_per_class": per_class,
                          **manifest.get("counts", {})}  # fmt: skip
    described = {"files": manifest["files"], "options": manifest["options"], "format": FORMAT}
    manifest["version"] = f"{version}:{paths.fingerprint(described)}"
    paths.atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))


def _test_images() -> tuple[dict[str, bytes], dict]:
    """The test images whose colour and shape are known, by ``<colour>_<shape>/<id>.png``, and the counts."""
    import easy_vqa

    texts, answers, image_ids = easy_vqa.get_test_questions()
    known: dict[int, dict[str, str]] = {}
    for question, answer, image_id in zip(texts, answers, image_ids):
        known.setdefault(image_id, {}).update(attributes(question, answer))
    images, unclassed = {}, 0
    for image_id, path in sorted(easy_vqa.get_test_image_paths().items()):
        attrs = known.get(image_id, {})
        if "color" not in attrs or "shape" not in attrs:
            unclassed += 1
            continue
        path = Path(path)
        if path.suffix.lower() != ".png" or not path.is_file():
            raise HarnessError(f"easy-vqa test image {image_id}: {path} is not a PNG file")
        images[f"{class_folder(attrs['color'], attrs['shape'])}/{image_id}.png"] = path.read_bytes()
    return images, {"test_images_in_package": len(images) + unclassed, "images_without_colour_and_shape": unclassed}


def _current(folder: Path, name: str, options: dict) -> bool:
    try:
        return valid_manifest(folder, name)["options"] == options
    except HarnessError:
        return False


def build(force: bool = False) -> Path:
    """Build ``easyvqa-folders`` from the installed easy-vqa package unless a valid build from the same package
    version is there (``force``: rebuild anyway); return its folder."""
    if importlib.util.find_spec("easy_vqa") is None:
        raise HarnessError(f"building {NAME} needs the easy-vqa package: run `{INSTALL}`")
    package = importlib.metadata.version("easy-vqa")
    options = {"easy_vqa": package}

    def write(folder: Path) -> None:
        images, counts = _test_images()
        manifest = {"name": NAME, "format": FORMAT, "options": options, "counts": counts,
                    "packages": [{"name": "easy-vqa", "version": package}]}  # fmt: skip
        save_folders(folder, images, manifest, f"easy-vqa=={package}")
        log.info("built %s: %d images in %d class folders", NAME, len(images), manifest["counts"]["classes"])

    return generated_folder(NAME, write, lambda folder: not force and _current(folder, NAME, options))


def load_built_folders(name: str = NAME) -> Dataset:
    """The build under ``$HARNESS_HOME/data/<name>``, its manifest and checksums checked, read by
    ``load_class_folders``; an image that the manifest does not list is refused. Its version is the manifest's."""
    folder = paths.home() / "data" / name
    manifest = valid_manifest(folder, name)
    dataset = load_class_folders(folder, name)
    listed = set(manifest["files"])
    extra = sorted(key for keys in dataset.classes.values() for key in keys if key not in listed)
    if extra:
        raise HarnessError(
            f"{folder}: image {extra[0]} is not in manifest.json (added after the build): {build_hint(name, True)}"
        )
    return dataclasses.replace(dataset, version=manifest["version"])


def availability() -> str:
    built = (paths.home() / "data" / NAME / "manifest.json").exists()
    return "yes (built)" if built else f"no: python -m harness data build {NAME}"


def missing() -> list[str]:
    """One line when the build is not there (what builds it, and the package it needs if that is missing)."""
    folder = paths.home() / "data" / NAME
    if (folder / "manifest.json").exists():
        return []
    needs = "" if importlib.util.find_spec("easy_vqa") else f" after `{INSTALL}`"
    return [f"data source {NAME} is not built (expected in {folder}): {build_hint(NAME)}{needs}"]


SOURCES.add(NAME, Source(load_built_folders, availability, missing=missing, build=build))
