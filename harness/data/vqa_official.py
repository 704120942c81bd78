"""VQAv2 and OK-VQA from the official JSON files, or from a copy on the Hugging Face hub.

Official files (``load_official``): per split, a questions JSON (``{"data_subtype": "val2014",
"questions": [{"image_id", "question", "question_id"}, ...], ...}``), an annotations JSON
(``{"annotations": [{"question_id", "image_id", "question_type", "answer_type", "answers": [{"answer",
"answer_id", ...}, ...], ...}, ...], ...}``) and the COCO image folder holding
``COCO_<data_subtype>_<12-digit image id>.jpg``. VQAv2 has 10 answers per question; OK-VQA v1.1 has
the same layout with 5 answers each given twice (its ``answer`` field, the stemmed form the official
OK-VQA evaluation scores against, is used, not ``raw_answer``), answer type "other" and knowledge
categories ("one" ... "ten") as question types. A question with other than 10 answers is refused, in one line.
Every question becomes one ``vqa`` row with id ``str(question_id)``, image key ``"<split>/<image_id>"``
and the answers in ``answer_id`` order. Image files are not checked at load (200k questions); a missing
one is reported when first used. The data version is a sha256 over the JSON files' bytes.

Where the files are (``load_vqav2`` / ``load_okvqa``, via ``paths_from_env``):

* ``HARNESS_VQAV2_DIR``: a folder with ``v2_OpenEnded_mscoco_{train2014,val2014}_questions.json`` and
  ``v2_mscoco_{train2014,val2014}_annotations.json`` (the official zips, unpacked side by side).
* ``HARNESS_OKVQA_DIR``: a folder with ``OpenEnded_mscoco_{train2014,val2014}_questions.json`` and
  ``mscoco_{train2014,val2014}_annotations.json`` (OK-VQA v1.1).
* Images: ``<that folder>/train2014/`` and ``<that folder>/val2014/`` if present, else
  ``$HARNESS_COCO_DIR/train2014/`` and ``$HARNESS_COCO_DIR/val2014/`` (the COCO folder ``coco`` uses).

Splits: "train" (train2014) and "val" (val2014); a split is loaded when its questions file is there,
so a folder with only the val2014 files gives a val-only source.

Hub copies (``load_hub``): a ``datasets`` table with the images inside it (an Image column, decoded on
first use), from the hub or from a folder written by ``save_to_disk``. the hub tasks' YAML files
hold the ids and column mappings of the copies that are known to load with current ``datasets``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.files import get_field, open_tables, read_json, safe_join, table_image_loader, undecoded_images
from harness.data.sources import SOURCES, Source, env_available, from_hub, needs_mapping
from harness.data.types import Dataset, Row
from harness.errors import HarnessError

# harness split -> COCO 2014 subtype (the name inside the official file names and image folders).
SPLITS = {"train": "train2014", "val": "val2014"}

ENV_VQAV2 = "HARNESS_VQAV2_DIR"
ENV_OKVQA = "HARNESS_OKVQA_DIR"
ENV_COCO = "HARNESS_COCO_DIR"
ANSWERS_PER_QUESTION = 10  # official VQAv2 and OK-VQA: always 10; other counts are refused, not scored


@dataclass(frozen=True)
class Layout:
    """How one source's official files are named inside the folder its variable points at."""

    name: str
    env: str
    questions: str  # file name pattern, {sub} = train2014 / val2014
    annotations: str
    what: str  # what the files are, for messages
    url: str  # where to download them


LAYOUTS = {
    "vqav2": Layout(
        "vqav2",
        ENV_VQAV2,
        "v2_OpenEnded_mscoco_{sub}_questions.json",
        "v2_mscoco_{sub}_annotations.json",
        "the official VQAv2 question and annotation files",
        "https://visualqa.org/download.html",
    ),
    "okvqa": Layout(
        "okvqa",
        ENV_OKVQA,
        "OpenEnded_mscoco_{sub}_questions.json",
        "mscoco_{sub}_annotations.json",
        "the OK-VQA v1.1 question and annotation files",
        "https://okvqa.allenai.org/download.html",
    ),
}

# The hub copies' ids and column mappings live in tasks/vqav2-hub.yaml and tasks/okvqa-hub.yaml.
HUB_REQUIRED = ("question_id", "question", "answers", "image")
HUB_OPTIONAL = ("image_id", "answer_type", "question_type")


# ----------------------------------------------------------------------------------------------------
# Official files


def image_file(folder: Path, subtype: str, image_id: int) -> Path:
    """The COCO file of ``image_id``: ``<folder>/COCO_<subtype>_<12-digit id>.jpg``."""
    return folder / f"COCO_{subtype}_{image_id:012d}.jpg"


def _read_questions(path: Path, split: str) -> tuple[str, list[tuple[int, int, str]], bytes]:
    """(data_subtype, [(question_id, image_id, question)] in file order, file bytes) from a questions file."""
    obj, data = read_json(path, "questions file")
    subtype = get_field(obj, "data_subtype", str, path, "top level")
    items = get_field(obj, "questions", list, path, "top level")
    if not items:
        raise HarnessError(f"{path}: no questions (split '{split}' would be empty)")
    questions: list[tuple[int, int, str]] = []
    seen: dict[int, int] = {}
    for i, item in enumerate(items):
        qid = get_field(item, "question_id", int, path, f"questions[{i}]")
        where = f"questions[{i}] (question_id {qid})"
        if qid in seen:
            raise HarnessError(f"{path}: {where}: duplicate question_id, also questions[{seen[qid]}]")
        seen[qid] = i
        image_id = get_field(item, "image_id", int, path, where)
        text = get_field(item, "question", str, path, where)
        questions.append((qid, image_id, text))
    return subtype, questions, data


def _read_annotations(path: Path) -> tuple[dict[int, tuple[int, int, tuple[str, ...], str, str]], bytes]:
    """question_id -> (index in the file, image_id, answers by answer_id, answer_type, question_type),
    and the file bytes."""
    obj, data = read_json(path, "annotations file")
    items = get_field(obj, "annotations", list, path, "top level")
    annotations: dict[int, tuple[int, int, tuple[str, ...], str, str]] = {}
    for i, item in enumerate(items):
        qid = get_field(item, "question_id", int, path, f"annotations[{i}]")
        where = f"annotations[{i}] (question_id {qid})"
        if qid in annotations:
            raise HarnessError(f"{path}: {where}: duplicate question_id, also annotations[{annotations[qid][0]}]")
        image_id = get_field(item, "image_id", int, path, where)
        answer_type = get_field(item, "answer_type", str, path, where)
        question_type = get_field(item, "question_type", str, path, where)
        answers = get_field(item, "answers", list, path, where)
        if not answers:
            raise HarnessError(f"{path}: {where}: 'answers' is empty")
        try:  # fast path for well-formed answers; the checks below only find the error to report
            ordered = sorted([(answer["answer_id"], j, answer["answer"]) for j, answer in enumerate(answers)])
            valid = all(type(answer_id) is int and type(text) is str for answer_id, _, text in ordered)
        except (KeyError, TypeError):
            valid = False
        if not valid:
            ordered = []
            for j, answer in enumerate(answers):
                text = get_field(answer, "answer", str, path, f"{where} answers[{j}]")
                answer_id = get_field(answer, "answer_id", int, path, f"{where} answers[{j}]")
                ordered.append((answer_id, j, text))
            ordered.sort()
        if len(ordered) != ANSWERS_PER_QUESTION:
            n, want = len(ordered), ANSWERS_PER_QUESTION  # with 1 answer an exact prediction would score 0
            raise HarnessError(f"{path}: {where}: {n} answer(s), official VQA files have {want} (damaged or foreign?)")
        annotations[qid] = (i, image_id, tuple(text for _, _, text in ordered), answer_type, question_type)
    return annotations, data


def load_official(
    questions: Mapping[str, Path],
    annotations: Mapping[str, Path],
    images: Mapping[str, Path],
    name: str,
) -> Dataset:
    """VQA rows from official-format files, each mapping keyed by harness split ("train", "val")."""
    if not questions:
        raise HarnessError(f"dataset {name}: no splits given")
    if set(questions) != set(annotations) or set(questions) != set(images):
        raise HarnessError(
            f"dataset {name}: questions, annotations and images must name the same splits "
            f"(got {sorted(questions)}, {sorted(annotations)}, {sorted(images)})"
        )
    digest = hashlib.sha256()
    splits: dict[str, list[Row]] = {}
    image_paths: dict[str, Path] = {}
    for split in questions:
        q_path, a_path, folder = Path(questions[split]), Path(annotations[split]), Path(images[split])
        if not folder.is_dir():
            raise HarnessError(f"{folder}: image folder for split '{split}' not found")
        subtype, split_questions, q_data = _read_questions(q_path, split)
        # The subtype is part of every image file name: it must not lead out of the image folder.
        safe_join(folder, f"COCO_{subtype}_{0:012d}.jpg", f"{q_path}: top level: 'data_subtype'")
        split_annotations, a_data = _read_annotations(a_path)
        for path, data in ((q_path, q_data), (a_path, a_data)):
            digest.update(f"{split}|{path.name}|{len(data)}\n".encode())
            digest.update(hashlib.sha256(data).digest())
        rows: list[Row] = []
        for qid, image_id, text in split_questions:
            annotation = split_annotations.pop(qid, None)
            if annotation is None:
                raise HarnessError(f"{a_path}: no annotation for question_id {qid} (from {q_path})")
            index, ann_image_id, answers, answer_type, question_type = annotation
            if ann_image_id != image_id:
                raise HarnessError(
                    f"{a_path}: annotations[{index}] (question_id {qid}): image_id {ann_image_id}, "
                    f"but {q_path.name} gives image_id {image_id}"
                )
            key = f"{split}/{image_id}"
            if key not in image_paths:
                image_paths[key] = image_file(folder, subtype, image_id)
            rows.append(Row(str(qid), key, text, answers, answer_type, question_type))
        if split_annotations:
            qid, (index, *_) = min(split_annotations.items(), key=lambda kv: kv[1][0])
            raise HarnessError(
                f"{a_path}: annotations[{index}]: question_id {qid} has no question in {q_path} "
                f"({len(split_annotations)} such annotation(s))"
            )
        splits[split] = rows
    version = f"vqa-official:{digest.hexdigest()[:16]}"
    return Dataset(name, version, splits, {split: [] for split in splits}, image_paths)


@dataclass(frozen=True)
class OfficialPaths:
    """The files ``load_official`` reads, keyed by harness split."""

    questions: dict[str, Path]
    annotations: dict[str, Path]
    images: dict[str, Path]


def _expected(layout: Layout) -> str:
    subs = ",".join(SPLITS.values())
    q = layout.questions.replace("{sub}", "{" + subs + "}")
    a = layout.annotations.replace("{sub}", "{" + subs + "}")
    return f"{q} and {a}"


def paths_from_env(source: str) -> OfficialPaths:
    """The official files of ``source`` ("vqav2" or "okvqa") in the folder its variable names.

    HARNESS_VQAV2_DIR / HARNESS_OKVQA_DIR hold the question and annotation files under their official
    names; the images are in ``<that folder>/<sub>/`` or else in ``$HARNESS_COCO_DIR/<sub>/``, for sub
    in train2014, val2014. Splits whose questions file is absent are left out; none at all is an error.
    """
    found, problems = find_official(source)
    if problems:
        raise HarnessError(problems[0])
    return found


def find_official(source: str) -> tuple[OfficialPaths, list[str]]:
    """The official files of ``source`` that are there, and one line for each that is missing (its variable, a
    folder, an annotations file, an image folder), without reading any."""
    if source not in LAYOUTS:
        raise HarnessError(f"unknown official VQA layout '{source}' (known: {', '.join(LAYOUTS)})")
    layout = LAYOUTS[source]
    images_hint = f"images in train2014/ and val2014/ there or under ${ENV_COCO}"
    paths = OfficialPaths({}, {}, {})
    value = os.environ.get(layout.env, "").strip()
    if not value:
        return paths, [
            f"data source {layout.name} needs {layout.env}: set it to the folder holding {_expected(layout)} "
            f"({layout.what}, from {layout.url}), with the COCO {images_hint}"
        ]
    root = Path(value).expanduser()
    if not root.is_dir():
        return paths, [f"{layout.env}={value}: folder not found (it must hold {_expected(layout)}, from {layout.url})"]
    coco = os.environ.get(ENV_COCO, "").strip()
    coco_root = Path(coco).expanduser() if coco else None
    problems: list[str] = []
    any_questions = False
    for split, sub in SPLITS.items():
        q_path = root / layout.questions.format(sub=sub)
        if not q_path.is_file():
            continue
        any_questions = True
        a_path = root / layout.annotations.format(sub=sub)
        if not a_path.is_file():
            problems.append(f"{a_path}: annotations file for {q_path.name} not found (in {layout.env})")
        folders = [root / sub] + ([coco_root / sub] if coco_root is not None else [])
        folder = next((f for f in folders if f.is_dir()), None)
        if folder is None:
            looked = " or ".join(str(f) for f in folders)
            hint = "" if coco_root is not None else f"; set {ENV_COCO} to the COCO folder holding {sub}/"
            problems.append(
                f"data source {layout.name}: image folder {sub}/ not found (looked in {looked}){hint} "
                f"(COCO {sub} images: https://cocodataset.org/#download)"
            )
        if a_path.is_file() and folder is not None:
            paths.questions[split], paths.annotations[split], paths.images[split] = q_path, a_path, folder
    if not any_questions:
        problems.append(
            f"{layout.env}={value}: holds none of the question files; it must hold {_expected(layout)} ({layout.what}, "
            f"from {layout.url})"
        )
    return paths, problems


def load_vqav2() -> Dataset:
    """VQAv2 (train2014 / val2014) from the official files under HARNESS_VQAV2_DIR."""
    p = paths_from_env("vqav2")
    return load_official(p.questions, p.annotations, p.images, "vqav2")


def load_okvqa() -> Dataset:
    """OK-VQA v1.1 (train2014 / val2014) from the official files under HARNESS_OKVQA_DIR."""
    p = paths_from_env("okvqa")
    return load_official(p.questions, p.annotations, p.images, "okvqa")


# ----------------------------------------------------------------------------------------------------
# Hub copies


def _answers(value: Any, where: str) -> tuple[str, ...]:
    """Answers from a list of strings, a list of {"answer", ["answer_id"]} dicts, or a dict of lists."""
    if isinstance(value, dict) and isinstance(value.get("answer"), list):  # Sequence({...}) columns
        ids = value.get("answer_id")
        ids = ids if isinstance(ids, list) and len(ids) == len(value["answer"]) else None
        value = [{"answer": a, **({"answer_id": ids[i]} if ids else {})} for i, a in enumerate(value["answer"])]
    if not isinstance(value, (list, tuple)) or not value:
        got = type(value).__name__ if value else "nothing"
        raise HarnessError(f"{where}: answers must be a non-empty list, got {got}")
    if all(isinstance(a, str) for a in value):
        return tuple(value)
    if all(isinstance(a, dict) and isinstance(a.get("answer"), str) for a in value):
        if all(isinstance(a.get("answer_id"), int) for a in value):
            value = sorted(value, key=lambda a: a["answer_id"])  # stable: ties keep their order
        return tuple(a["answer"] for a in value)
    raise HarnessError(f"{where}: answers must be strings or objects with a string 'answer'")


def load_hub(
    dataset_id: str,
    splits: dict[str, str],
    columns: dict[str, str],
    name: str = "vqa-hub",
) -> Dataset:
    """VQA rows from a ``datasets`` table (hub id, or a folder written by ``save_to_disk``).

    ``splits`` maps harness split -> table split. ``columns`` maps ``question_id``, ``question``,
    ``answers`` (list of strings, or of dicts with ``answer`` and optionally ``answer_id``) and ``image``
    (an Image feature) to column names, and optionally ``image_id``, ``answer_type``, ``question_type``.
    Images are keyed ``"<split>/<image_id>"``, or ``"<split>/q<question_id>"`` without an image_id
    column, and decoded on first use.
    """
    import datasets

    missing = [k for k in HUB_REQUIRED if k not in columns]
    if missing:
        raise HarnessError(f"hub dataset {dataset_id}: columns mapping lacks {', '.join(missing)}")
    unknown = [k for k in columns if k not in HUB_REQUIRED + HUB_OPTIONAL]
    if unknown:
        raise HarnessError(f"hub dataset {dataset_id}: unknown column role(s) {', '.join(unknown)}")
    if not splits:
        raise HarnessError(f"hub dataset {dataset_id}: no splits asked for")
    image_col = columns["image"]
    text_roles = [k for k in columns if k != "image"]
    tables = open_tables(dataset_id, splits)

    digest = hashlib.sha256(f"{dataset_id}\n".encode())
    rows: dict[str, list[Row]] = {}
    image_tables: dict[str, Any] = {}
    locations: dict[str, tuple[str, int]] = {}
    for split, table in tables.items():
        where = f"hub dataset {dataset_id} split '{splits[split]}'"
        for role, column in columns.items():
            if column not in table.column_names:
                have = ", ".join(table.column_names)
                raise HarnessError(f"{where}: no column '{column}' for {role} (has {have})")
        if not isinstance(table.features[image_col], datasets.Image):
            kind = type(table.features[image_col]).__name__
            raise HarnessError(f"{where}: column '{image_col}' is {kind}, not Image")
        if table.num_rows == 0:
            raise HarnessError(f"{where}: no rows (split '{split}' would be empty)")
        digest.update(f"{split}|{splits[split]}|{table._fingerprint}|{table.num_rows}\n".encode())
        text = table.select_columns([columns[r] for r in text_roles]).to_dict()
        values = {role: text[columns[role]] for role in text_roles}
        split_rows: list[Row] = []
        seen: dict[str, int] = {}
        for index in range(table.num_rows):
            qid = str(values["question_id"][index])
            at = f"{where}: row {index} (question_id {qid})"
            if qid in seen:
                raise HarnessError(f"{at}: duplicate question_id, also row {seen[qid]}")
            seen[qid] = index
            question = values["question"][index]
            if not isinstance(question, str):
                raise HarnessError(f"{at}: question must be a string, got {type(question).__name__}")
            answers = _answers(values["answers"][index], at)
            key = f"{split}/{values['image_id'][index]}" if "image_id" in values else f"{split}/q{qid}"
            locations.setdefault(key, (split, index))
            answer_type = str(values["answer_type"][index] or "") if "answer_type" in values else ""
            question_type = str(values["question_type"][index] or "") if "question_type" in values else ""
            split_rows.append(Row(qid, key, question, answers, answer_type, question_type))
            digest.update(json.dumps([key, qid, question, answers, answer_type, question_type]).encode() + b"\n")
        rows[split] = split_rows
        image_tables[split] = undecoded_images(table, image_col)

    load_image = table_image_loader(name, dataset_id, image_tables, locations, image_col)
    version = f"hub:{digest.hexdigest()[:16]}"
    return Dataset(name, version, rows, {split: [] for split in rows}, image_loader=load_image)


SOURCES.add("vqav2", Source(load_vqav2, env_available(ENV_VQAV2), missing=lambda: find_official("vqav2")[1]))
SOURCES.add("okvqa", Source(load_okvqa, env_available(ENV_OKVQA), missing=lambda: find_official("okvqa")[1]))
SOURCES.add("vqa-hub", Source(needs_mapping("vqa-hub"), from_hub, load_hub))
