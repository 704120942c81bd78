"""COCO captions on Karpathy's split, from local files or from a copy on the hub.

Local files: Karpathy's ``dataset_coco.json`` (from ``caption_datasets.zip``) names each image's
split and sentences; the images live under ``<image_root>/train2014`` and ``<image_root>/val2014``.
Splits: train = train + restval (113,287 images), val (5,000: the dev split), test (5,000). Every image becomes one
``caption`` row whose answers are its reference captions, keyed ``"<filepath>/<filename>"``, and each
of its sentences one training caption.

References: Karpathy's ``raw`` sentences, unless the official ``captions_{train,val}2014.json`` are
given; then an image's references are its official captions (matched by cocoid = image_id), which
is what COCOEvalCap scores against. The official files must then cover every val and test image;
train and restval images they do not cover keep their Karpathy sentences. Training captions are
always Karpathy's ``raw`` sentences.

Hub copy: ``load_hub`` reads a ``datasets`` table (or a folder written by ``save_to_disk``) with an
id column, an Image column decoded on first use, and a list-of-strings references column.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.data.files import get_field, open_tables, read_json, safe_join, table_image_loader, undecoded_images
from harness.data.sources import SOURCES, Source, env_available, from_hub, needs_mapping
from harness.data.types import Caption, Dataset, Row
from harness.errors import HarnessError

# Karpathy split value -> harness split.
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
SPLITS = ("train", "val", "test")

ENV_DIR = "HARNESS_COCO_DIR"
ENV_KARPATHY = "HARNESS_KARPATHY_FILE"

# The hub copy's id and column mapping live in tasks/coco-hub.yaml.


def _official_references(paths: Sequence[Path], digest: Any) -> dict[int, list[str]]:
    """image_id -> captions, in file order, from official COCO caption JSONs."""
    references: dict[int, list[str]] = {}
    for path in map(Path, paths):
        obj, data = read_json(path, "COCO caption file")
        digest.update(f"{path.name}:{len(data)}\n".encode())
        digest.update(data)
        annotations = get_field(obj, "annotations", list, path, "top level")
        for i, ann in enumerate(annotations):
            where = f"annotations[{i}]"
            image_id = get_field(ann, "image_id", int, path, where)
            text = get_field(ann, "caption", str, path, f"{where} (image_id {image_id})")
            references.setdefault(image_id, []).append(text)
    return references


def load_karpathy(
    split_file: Path,
    image_root: Path,
    captions_json: Sequence[Path] = (),
    name: str = "coco",
) -> Dataset:
    """COCO on Karpathy's split from ``dataset_coco.json`` and the 2014 image folders."""
    split_file, image_root = Path(split_file), Path(image_root)
    if not image_root.is_dir():
        raise HarnessError(f"{image_root}: COCO image folder not found (it must hold train2014/ and val2014/)")
    digest = hashlib.sha256()
    obj, data = read_json(split_file, "Karpathy split file")
    digest.update(f"{split_file.name}:{len(data)}\n".encode())
    digest.update(data)
    if isinstance(obj, dict) and obj.get("dataset", "coco") != "coco":
        raise HarnessError(f"{split_file}: 'dataset' is '{obj['dataset']}', expected 'coco' (dataset_coco.json)")
    images = get_field(obj, "images", list, split_file, "top level")
    official = _official_references(captions_json, digest) if captions_json else None

    splits: dict[str, list[Row]] = {s: [] for s in SPLITS}
    captions: dict[str, list[Caption]] = {s: [] for s in SPLITS}
    image_paths: dict[str, Path] = {}
    seen: dict[int, int] = {}
    folders: dict[str, Path] = {}
    for i, image in enumerate(images):
        where = f"images[{i}]"
        cocoid = get_field(image, "cocoid", int, split_file, where)
        where = f"images[{i}] (cocoid {cocoid})"
        if cocoid in seen:
            raise HarnessError(f"{split_file}: {where}: duplicate cocoid, also images[{seen[cocoid]}]")
        seen[cocoid] = i
        filepath = get_field(image, "filepath", str, split_file, where)
        filename = get_field(image, "filename", str, split_file, where)
        karpathy_split = get_field(image, "split", str, split_file, where)
        if karpathy_split not in KARPATHY_SPLITS:
            known = ", ".join(KARPATHY_SPLITS)
            raise HarnessError(f"{split_file}: {where}: unknown split '{karpathy_split}' (expected one of {known})")
        sentences = get_field(image, "sentences", list, split_file, where)
        if not sentences:
            raise HarnessError(f"{split_file}: {where}: image has no sentences")
        try:  # fast path; the checked read below names the first bad sentence
            raw = [s["raw"] for s in sentences]
            ok = all(type(r) is str for r in raw)
        except (TypeError, KeyError):
            ok = False
        if not ok:
            raw = [get_field(s, "raw", str, split_file, f"{where} sentences[{j}]") for j, s in enumerate(sentences)]
        split = KARPATHY_SPLITS[karpathy_split]
        references = raw
        if official is not None:
            if cocoid in official:
                references = official[cocoid]
            elif split in ("val", "test"):
                files = ", ".join(str(p) for p in captions_json)
                raise HarnessError(
                    f"{split_file}: {where}: {split} image missing from the COCO caption files ({files})"
                )
        key = f"{filepath}/{filename}"
        if filepath not in folders:
            folders[filepath] = safe_join(image_root, filepath, f"{split_file}: {where}: 'filepath'", "folder")
        image_paths[key] = safe_join(folders[filepath], filename, f"{split_file}: {where}: 'filename'")
        splits[split].append(Row(str(cocoid), key, answers=tuple(references), answer_type="caption"))
        captions[split].extend(Caption(key, text) for text in raw)
    for folder in sorted(folders):
        if not folders[folder].is_dir():
            raise HarnessError(f"{folders[folder]}: image folder '{folder}' named in {split_file} not found")
    # Karpathy's val split is the dev split: disjoint from test and from train (+ restval), which train.
    return Dataset(name, f"karpathy:{digest.hexdigest()[:16]}", splits, captions, image_paths, dev_split="val")


def load_coco_from_env() -> Dataset:
    """``load_karpathy`` on the folders named by HARNESS_COCO_DIR and HARNESS_KARPATHY_FILE."""
    root, split_file, problems = find_coco()
    if problems:
        raise HarnessError(problems[0])
    annotations = root / "annotations"
    official = [
        p for p in (annotations / "captions_train2014.json", annotations / "captions_val2014.json") if p.is_file()
    ]
    return load_karpathy(split_file, root, official)


_KARPATHY_ZIP = "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip"


def find_coco(folders: bool = False) -> tuple[Path, Path, list[str]]:
    """(COCO folder, Karpathy split file, one line for each of them that is missing), reading neither;
    ``folders``: its train2014/ and val2014/ too (the folders the full dataset_coco.json names)."""
    coco_dir = os.environ.get(ENV_DIR, "").strip()
    karpathy = os.environ.get(ENV_KARPATHY, "").strip()
    root = Path(coco_dir).expanduser()
    split_file = Path(karpathy).expanduser() if karpathy else root / "dataset_coco.json"
    problems = []
    if not coco_dir:
        problems.append(
            f"data source coco needs {ENV_DIR}: set it to the COCO folder holding train2014/ and val2014/ "
            f"(and optionally annotations/captions_train2014.json, annotations/captions_val2014.json; the 2014 "
            "images from https://cocodataset.org/#download)"
        )
    elif not root.is_dir():
        problems.append(f"{ENV_DIR}={coco_dir}: COCO image folder not found (it must hold train2014/ and val2014/)")
    elif folders:
        problems += [f"{root / sub}: COCO image folder {sub}/ not found in {ENV_DIR} (the 2014 images from "
                     "https://cocodataset.org/#download)" for sub in ("train2014", "val2014") if not (root / sub).is_dir()]  # fmt: skip
    if not split_file.is_file():
        where = split_file if coco_dir or karpathy else f"${ENV_DIR}/dataset_coco.json"
        problems.append(
            f"{where}: Karpathy split file not found; set {ENV_KARPATHY} to dataset_coco.json "
            f"(from Karpathy's caption_datasets.zip, {_KARPATHY_ZIP}) or put it at ${ENV_DIR}/dataset_coco.json"
        )
    return root, split_file, problems


def load_hub(
    dataset_id: str,
    splits: dict[str, str],
    columns: dict[str, str],
    name: str = "coco-hub",
) -> Dataset:
    """Caption rows from a datasets table: ``splits`` maps harness split -> table split, ``columns``
    maps ``id``, ``image`` (an Image feature) and ``references`` (list of strings) to column names."""
    import datasets

    missing = [k for k in ("id", "image", "references") if k not in columns]
    if missing:
        raise HarnessError(f"hub dataset {dataset_id}: columns mapping lacks {', '.join(missing)}")
    if not splits:
        raise HarnessError(f"hub dataset {dataset_id}: no splits asked for")
    id_col, image_col, ref_col = columns["id"], columns["image"], columns["references"]
    tables = open_tables(dataset_id, splits)

    digest = hashlib.sha256(f"{dataset_id}\n".encode())
    rows: dict[str, list[Row]] = {}
    captions: dict[str, list[Caption]] = {}
    image_tables: dict[str, Any] = {}
    locations: dict[str, tuple[str, int]] = {}
    for split, table in tables.items():
        where = f"hub dataset {dataset_id} split '{splits[split]}'"
        for column in (id_col, image_col, ref_col):
            if column not in table.column_names:
                raise HarnessError(f"{where}: no column '{column}' (has {', '.join(table.column_names)})")
        if not isinstance(table.features[image_col], datasets.Image):
            raise HarnessError(
                f"{where}: column '{image_col}' is {type(table.features[image_col]).__name__}, not Image"
            )
        digest.update(f"{split}|{splits[split]}|{table._fingerprint}|{table.num_rows}\n".encode())
        text = table.select_columns([id_col, ref_col])
        ids, references = text[id_col], text[ref_col]
        rows[split], captions[split] = [], []
        for index, (row_id, refs) in enumerate(zip(ids, references)):
            key = f"{split}/{row_id}"
            if key in locations:
                raise HarnessError(f"{where}: row {index}: duplicate {id_col} {row_id}")
            if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) for r in refs):
                raise HarnessError(f"{where}: row {index} ({id_col} {row_id}): '{ref_col}' must be a list of strings")
            if not refs:
                raise HarnessError(f"{where}: row {index} ({id_col} {row_id}): no references")
            locations[key] = (split, index)
            rows[split].append(Row(str(row_id), key, answers=tuple(refs), answer_type="caption"))
            captions[split].extend(Caption(key, r) for r in refs)
        image_tables[split] = undecoded_images(table, image_col)

    load_image = table_image_loader(name, dataset_id, image_tables, locations, image_col)
    version = f"hub:{digest.hexdigest()[:16]}"
    return Dataset(name, version, rows, captions, image_loader=load_image)


SOURCES.add("coco", Source(load_coco_from_env, env_available(ENV_DIR), missing=lambda: find_coco(folders=True)[2]))
SOURCES.add("caption-hub", Source(needs_mapping("caption-hub"), from_hub, load_hub))
