"""tiny-miniimagenet and tiny-frozen-episodes: the tiny twins of the naming sources, generated image folders in
exactly the layouts the real sources read, through the real loaders (``harness.data.folders``).

``$HARNESS_HOME/data/tiny-miniimagenet/``: a folder per class, named by the class's real name as
``load_class_folders`` expects (``red_circle/00.jpg`` ... ``red_circle/05.jpg``), 24 classes of tiny-shapes
drawings; the naming protocol writes the name "red circle" (``display_name``).

``$HARNESS_HOME/data/tiny-easyvqa-folders/``: the layout ``harness data build easyvqa-folders`` writes
(``red_circle/00.png`` ..., ``manifest.json`` with the files' checksums), 24 classes of six tiny-shapes drawings,
read back by the real loader (``harness.data.easyvqa_folders.load_built_folders``).

``$HARNESS_HOME/data/tiny-frozen-episodes/``: Frozen's released open-ended episodes as ``load_frozen_episodes``
reads them (a folder like the release's ``open_ended_mi``): per configuration a JSON list of episodes
``open_ended_mi_shots_<n>_ways_<m>_all_questions.json`` with ``image_1``/``caption_1`` ... (``"This is a
dax."``), ``question``, ``question_image`` and ``answer``, and each episode's own image files
``open_ended_mi_shots_<n>_ways_<m>_id_<x>_image_<i>.jpg`` and ``..._question.jpg``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.data.built import FORMAT, valid_manifest
from harness.data.easyvqa_folders import load_built_folders, save_folders
from harness.data.folders import load_class_folders, load_frozen_episodes
from harness.data.naming_text import NONSENSE_NAMES, support_text
from harness.data.sources import SOURCES, Source, generated
from harness.data.tiny_files import CLASSES, generated_folder, listing, photo, png_bytes, save_jpeg
from harness.data.types import Dataset
from harness.errors import HarnessError

PER_CLASS = 6  # images per class folder: up to 5 inner shots and a query
EPISODES = {(1, 2): 12, (3, 2): 8}  # (shots, ways) -> episodes in that configuration's file
TASK = "open_ended_mi"  # the release's file-name prefix


def class_folder(color: str, shape: str) -> str:
    return f"{color}_{shape}"


def miniimagenet_files() -> set[str]:
    return {f"{class_folder(c, s)}/{n:02d}.jpg" for c, s in CLASSES for n in range(PER_CLASS)}


def write_class_folders(folder: Path) -> None:
    rng = random.Random("tiny-miniimagenet")
    for color, shape in CLASSES:
        for n in range(PER_CLASS):
            save_jpeg(photo(color, shape, rng), folder / class_folder(color, shape) / f"{n:02d}.jpg")


def load_miniimagenet() -> Dataset:
    folder = generated_folder("tiny-miniimagenet", write_class_folders, lambda f: listing(f) == miniimagenet_files())
    return load_class_folders(folder, "tiny-miniimagenet")


def write_easyvqa_folders(folder: Path) -> None:
    rng = random.Random("tiny-easyvqa-folders")
    images = {
        f"{class_folder(c, s)}/{n:02d}.png": png_bytes(photo(c, s, rng)) for c, s in CLASSES for n in range(PER_CLASS)
    }
    manifest = {"name": "tiny-easyvqa-folders", "format": FORMAT, "options": {}, "packages": []}
    save_folders(folder, images, manifest, "tiny-easyvqa-folders-1")


def _current_easyvqa_folders(folder: Path) -> bool:
    try:
        return valid_manifest(folder, "tiny-easyvqa-folders")["version"].startswith("tiny-easyvqa-folders-1:")
    except HarnessError:
        return False


def load_easyvqa_folders() -> Dataset:
    generated_folder("tiny-easyvqa-folders", write_easyvqa_folders, _current_easyvqa_folders)
    return load_built_folders("tiny-easyvqa-folders")


def config(shots: int, ways: int) -> str:
    return f"{TASK}_shots_{shots}_ways_{ways}"


def episode_files() -> set[str]:
    files = set()
    for (shots, ways), count in EPISODES.items():
        files.add(f"{config(shots, ways)}_all_questions.json")
        for x in range(count):
            files |= {f"{config(shots, ways)}_id_{x}_image_{i}.jpg" for i in range(1, shots * ways + 1)}
            files.add(f"{config(shots, ways)}_id_{x}_question.jpg")
    return files


def write_episodes(folder: Path) -> None:
    """Each episode: ``ways`` classes with shuffled nonsense names, ``shots`` drawings of each, interleaved and
    shuffled, then one more drawing of one of them to name."""
    rng = random.Random("tiny-frozen-episodes")
    for (shots, ways), count in EPISODES.items():
        entries = []
        for x in range(count):
            chosen = rng.sample(CLASSES, ways)
            names = rng.sample(NONSENSE_NAMES, ways)
            support = [(cls, name) for _ in range(shots) for cls, name in rng.sample(list(zip(chosen, names)), ways)]
            entry: dict[str, str] = {}
            for i, ((color, shape), name) in enumerate(support, 1):
                entry[f"image_{i}"] = f"{config(shots, ways)}_id_{x}_image_{i}.jpg"
                entry[f"caption_{i}"] = support_text(name)
                save_jpeg(photo(color, shape, rng), folder / entry[f"image_{i}"])
            target = rng.randrange(ways)
            entry["question"] = "What is this?"
            entry["question_image"] = f"{config(shots, ways)}_id_{x}_question.jpg"
            entry["answer"] = names[target]
            save_jpeg(photo(*chosen[target], rng), folder / entry["question_image"])
            entries.append(entry)
        (folder / f"{config(shots, ways)}_all_questions.json").write_text(json.dumps(entries, indent=1))


def load_episodes() -> Dataset:
    folder = generated_folder("tiny-frozen-episodes", write_episodes, lambda f: listing(f) == episode_files())
    return load_frozen_episodes(folder, "tiny-frozen-episodes")[0]


SOURCES.add("tiny-miniimagenet", Source(load_miniimagenet, generated))
SOURCES.add("tiny-easyvqa-folders", Source(load_easyvqa_folders, generated))
SOURCES.add("tiny-frozen-episodes", Source(load_episodes, generated))
