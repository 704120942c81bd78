"""Image sets on disk for the naming protocol: class folders, and Frozen's released episode files.

``load_class_folders`` reads a folder-per-class image set (miniImageNet's test classes as
``root/<class>/<image>.jpg``, or any other) into ``Dataset.classes``, from which
``harness.kinds.naming.build_episodes`` draws episodes.

``load_frozen_episodes`` reads Frozen's own episodes (DeepMind's ``open_ended_mi`` /
``real_name_mi`` archives, https://fh295.github.io/frozen.html). What is known of their layout:

- The release page: each extracted directory holds, for every question (episode) ``x``, support
  images ``<task>_shots_<n>_ways_<m>_id_<x>_image_<i>.jpg`` (``i`` = position in the support),
  the query image ``<task>_shots_<n>_ways_<m>_id_<x>_question.jpg``, and per configuration a JSON
  file ``<task>_shots_<n>_ways_<m>_all_questions.json`` "that define[s] each question in terms of
  the constituent images, any corresponding text, and the correct answer".
- Public loaders of these files (ivonajdenkoska/multimodal-meta-learn ``src/data_loaders.py``,
  ICLR 2023; giraykskn/Fromage-dl2) read that JSON as a list with one object per episode, with
  keys ``image_1``, ``caption_1``, ..., ``image_<n*m>``, ``caption_<n*m>`` (support image file
  name and its text), ``question`` (the query text), ``question_image`` (query image file name)
  and ``answer``; image file names are relative to the directory holding the JSON.

What we assume beyond that, each checked with a one-line error naming the file and field:

1. The folder (or a direct sub-folder) holds one or more ``*_all_questions.json`` files, each a
   JSON list of objects; image names resolve inside ``folder`` to existing files.
2. The support is ``image_1``/``caption_1`` onwards with no gaps; there is no ``image_<k>`` without
   its ``caption_<k>``. Where the file name says ``shots_<n>_ways_<m>``, there are ``n*m`` of them.
3. A caption is either "This is a <name>." / "This is an <name>." (any case, the period
   optional) or the bare name; the answer likewise. Captions and answers are single sentences.
4. The answer is one of the names in the episode's support (compared case-insensitively), and
   where the file name says ``ways_<m>``, the captions name exactly ``m`` different classes.

The support images keep the release's order (it already interleaves and shuffles classes); the
episodes' ``question`` is the file's query text (the naming prompt uses the protocol's fixed
``QUERY_TEXT`` unless a task's prompt asks for ``{question}``). The release has no task induction;
``induction=True`` writes ``harness.data.naming_text.induction_text`` over the support's names, in order of
first appearance.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from harness.data.files import inside, safe_join
from harness.data.naming_text import class_description, induction_text
from harness.data.sources import SOURCES, Source, env_available, env_missing, from_env
from harness.data.types import Dataset, Row
from harness.errors import HarnessError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
_CONFIG = re.compile(r"shots_(\d+)_ways_(\d+)_all_questions\.json$")
_THIS_IS = re.compile(r"^this\s+is\s+an?\s+(?P<name>.+?)\s*\.?$", re.IGNORECASE | re.DOTALL)


def load_class_folders(root: Path, name: str) -> Dataset:
    """A folder-per-class image set: ``classes`` maps each class folder to its sorted image keys.

    Keys are ``"<class>/<file>"``; only regular image files (jpg, jpeg, png, webp, bmp, any case)
    directly inside a class folder count, hidden entries are ignored, and a class folder with no
    images is skipped. Every name comes from listing ``root``; entries (symlinks included) that
    resolve outside ``root`` are skipped. The version is a short sha256 over the sorted keys and
    file sizes. Where a class folder's name reads as words (``red_circle``), its images have the description
    "a red circle." for ``--images caption`` (``naming_text.class_description``); names that do not (WordNet
    ids such as ``n01532829``) give none. Descriptions are not part of the version.
    """
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"data source {name}: {root} is not a folder")
    real_root = root.resolve()
    classes: dict[str, list[str]] = {}
    image_paths: dict[str, Path] = {}
    digest = hashlib.sha256()
    for class_dir in sorted(root.iterdir(), key=lambda p: p.name):
        if class_dir.name.startswith(".") or not class_dir.is_dir() or not inside(real_root, class_dir):
            continue
        keys = []
        for file in sorted(class_dir.iterdir(), key=lambda p: p.name):
            if file.name.startswith(".") or file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not file.is_file() or not inside(real_root, file):
                continue
            key = f"{class_dir.name}/{file.name}"
            keys.append(key)
            image_paths[key] = file
            digest.update(f"{key}\t{file.stat().st_size}\n".encode())
        if keys:
            classes[class_dir.name] = keys
    if not classes:
        raise HarnessError(
            f"data source {name}: no class folders with images under {root} "
            f"(expected {root}/<class>/<image>.jpg; image types: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    descriptions = {key: text for cls, keys in classes.items() if (text := class_description(cls)) for key in keys}
    return Dataset(
        name, digest.hexdigest()[:16], {}, {}, image_paths=image_paths, classes=classes, descriptions=descriptions
    )


def _name_of(text: Any, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise HarnessError(f"{where}: expected a non-empty string, got {text!r:.60}")
    text = text.strip()
    match = _THIS_IS.match(text)
    name = match.group("name") if match else text.rstrip(".").strip()
    if not name or re.search(r"[.\n\r]", name):
        raise HarnessError(
            f"{where}: cannot read a name from {text!r:.60} (expected 'This is a <name>.' or the bare name)"
        )
    return name


def _image(value: Any, where: str, base: Path, folder: Path) -> tuple[str, Path]:
    """(image key, path) of an image named in an episode file in ``base``; it must be inside ``folder``."""
    if not isinstance(value, str) or not value.strip():
        raise HarnessError(f"{where}: expected an image file name, got {value!r:.60}")
    path = safe_join(folder, value.strip(), where, base=base, resolve=True)
    if not path.is_file():
        raise HarnessError(f"{where}: image file {path} not found")
    return path.resolve().relative_to(folder.resolve()).as_posix(), path


def load_frozen_episodes(folder: Path, name: str, *, induction: bool = False) -> tuple[Dataset, list[Row]]:
    """Frozen's released naming episodes under ``folder``: the Dataset and every episode as a Row.

    See the module docstring for the file layout and each assumption. Rows come file by file
    (files sorted by path), in each file's order; their ids are ``<name>-<n>shot-<m>way-<index>``
    (or ``<name>-<file stem>-<index>`` where the file name has no ``shots_<n>_ways_<m>``). The
    Dataset's splits: ``"test"`` with every row, and one split per file keyed by its configuration,
    ``"shots_<n>_ways_<m>"`` (or its stem). The version is a short sha256 over the JSON files'
    bytes and the sizes of the images they name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HarnessError(f"data source {name}: {folder} is not a folder")
    real = folder.resolve()
    files = sorted(set(folder.glob("*_all_questions.json")) | set(folder.glob("*/*_all_questions.json")))
    files = [f for f in files if f.is_file() and inside(real, f)]
    if not files:
        raise HarnessError(
            f"data source {name}: no Frozen episode files (*_all_questions.json) in {folder} or its sub-folders"
        )
    digest = hashlib.sha256()
    image_paths: dict[str, Path] = {}
    splits: dict[str, list[Row]] = {}
    every: list[Row] = []
    for file in files:
        label = file.relative_to(folder).as_posix()
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise HarnessError(f"{file}: cannot read ({exc.strerror or exc})") from None
        digest.update(f"{label}\n".encode() + hashlib.sha256(raw).digest())
        try:
            entries = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HarnessError(f"{file}: not valid JSON ({str(exc).splitlines()[0]})") from None
        if not isinstance(entries, list):
            raise HarnessError(f"{file}: expected a JSON list of episodes, got {type(entries).__name__}")
        config = _CONFIG.search(file.name)
        ways = int(config.group(2)) if config else None
        expected = int(config.group(1)) * ways if config else None
        split = f"shots_{config.group(1)}_ways_{config.group(2)}" if config else file.stem
        tag = f"{config.group(1)}shot-{config.group(2)}way" if config else file.stem
        if split in splits:
            raise HarnessError(f"{file}: a second file for configuration {split}")
        rows = []
        for index, entry in enumerate(entries):
            where = f"{file}: episode {index}"
            if not isinstance(entry, dict):
                raise HarnessError(f"{where}: expected an object, got {type(entry).__name__}")
            support = []
            k = 1
            while f"image_{k}" in entry:
                key, path = _image(entry[f"image_{k}"], f"{where}, field image_{k}", file.parent, folder)
                if f"caption_{k}" not in entry:
                    raise HarnessError(f"{where}: field caption_{k} missing (image_{k} has no caption)")
                support.append((key, _name_of(entry[f"caption_{k}"], f"{where}, field caption_{k}")))
                image_paths[key] = path
                k += 1
            numbered = (f for f in entry if re.fullmatch(r"(image|caption)_\d+", f) and int(f.split("_")[1]) >= k)
            stray = sorted(numbered, key=lambda f: (int(f.split("_")[1]), not f.startswith("image")))
            if stray:
                raise HarnessError(f"{where}: field {stray[0]} does not follow image_1..image_{k - 1} without gaps")
            if not support:
                raise HarnessError(f"{where}: field image_1 missing (no support images)")
            if expected is not None and len(support) != expected:
                raise HarnessError(
                    f"{where}: {len(support)} support images (image_1..image_{len(support)}); "
                    f"the file name's {split} means {expected}"
                )
            for field in ("question_image", "answer", "question"):
                if field not in entry:
                    raise HarnessError(f"{where}: field {field} missing")
            query, path = _image(entry["question_image"], f"{where}, field question_image", file.parent, folder)
            image_paths[query] = path
            answer = _name_of(entry["answer"], f"{where}, field answer")
            names = list(dict.fromkeys(n for _, n in support))
            if ways is not None and len({n.lower() for n in names}) != ways:
                raise HarnessError(
                    f"{where}: fields caption_1..caption_{len(support)} name {len(names)} classes "
                    f"({', '.join(names)}); the file name's {split} means {ways}"
                )
            matches = [n for n in names if n.lower() == answer.lower()]
            if not matches:
                raise HarnessError(f"{where}: field answer {answer!r} is not a support name ({', '.join(names)})")
            question = entry["question"]
            if not isinstance(question, str):
                raise HarnessError(f"{where}: field question: expected a string, got {type(question).__name__}")
            rows.append(
                Row(
                    id=f"{name}-{tag}-{index}",
                    image=query,
                    question=question.strip(),
                    answers=(matches[0],),
                    answer_type="naming",
                    question_type=f"{len(names)}-way",
                    support=tuple(support),
                    induction=induction_text(names) if induction else "",
                )
            )
        if not rows:
            raise HarnessError(f"{file}: no episodes")
        splits[split] = rows
        every += rows
    for key in sorted(image_paths):
        digest.update(f"{key}\t{image_paths[key].stat().st_size}\n".encode())
    splits = {"test": every, **splits}
    dataset = Dataset(name, digest.hexdigest()[:16], splits, {}, image_paths=image_paths)
    return dataset, every


_CLASS_FOLDERS = "a folder with one sub-folder of images per class (e.g. miniImageNet's test classes)"
_EPISODES = "the folder of Frozen's released episode files (open_ended_mi or real_name_mi)"
SOURCES.add("miniimagenet", Source(
    from_env("HARNESS_MINIIMAGENET_DIR", lambda p: load_class_folders(p, "miniimagenet"), _CLASS_FOLDERS),
    env_available("HARNESS_MINIIMAGENET_DIR"),
    missing=env_missing("miniimagenet", "HARNESS_MINIIMAGENET_DIR", _CLASS_FOLDERS),
))  # fmt: skip
SOURCES.add("frozen-episodes", Source(
    from_env("HARNESS_FROZEN_EPISODES_DIR", lambda p: load_frozen_episodes(p, "frozen-episodes")[0], _EPISODES),
    env_available("HARNESS_FROZEN_EPISODES_DIR"),
    missing=env_missing("frozen-episodes", "HARNESS_FROZEN_EPISODES_DIR", _EPISODES),
))  # fmt: skip
