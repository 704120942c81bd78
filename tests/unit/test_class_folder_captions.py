"""Class folders as text: a folder name that reads as words describes its images ("a red circle."), for
--images caption, the text ceiling of naming; a WordNet id describes nothing, and --images caption says why.
Descriptions stay out of the data version."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from harness import conditions
from harness.data.folders import load_class_folders
from harness.data.naming_text import class_description
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.kinds.base import kind_of


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_descriptions_from_folder_names_that_read_as_words() -> None:
    assert class_description("red_circle") == "a red circle."
    assert class_description("orange_square") == "an orange square."
    assert class_description("Golden_Retriever") == "a Golden Retriever."
    assert class_description("jack-o-lantern") == "a jack-o-lantern."
    for not_words in ("n01532829", "class_2", "3d_shape", "", "_", "red/circle", "dog!"):
        assert class_description(not_words) == "", not_words


def _folders(root: Path, names: list[str], per_class: int = 3) -> Path:
    from PIL import Image

    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            Image.new("RGB", (8 + n, 8), (40 * c, 10 * n, 0)).save(root / name / f"{n}.png")
    return root


def test_class_folder_descriptions_are_not_part_of_the_version(tmp_path: Path) -> None:
    """The version of a class-folder source is what it was before descriptions: keys and file sizes only."""
    root = _folders(tmp_path / "set", ["red_circle", "blue_square"])
    digest = hashlib.sha256()
    for key in sorted(f"{c}/{n}.png" for c in ("blue_square", "red_circle") for n in range(3)):
        digest.update(f"{key}\t{(root / key).stat().st_size}\n".encode())
    dataset = load_class_folders(root, "set")
    assert dataset.version == digest.hexdigest()[:16]
    assert dataset.descriptions == {
        f"{c}/{n}.png": f"a {c.replace('_', ' ')}." for c in dataset.classes for n in range(3)
    }


def _caption_prompt(dataset, task_name: str = "miniimagenet-open") -> list:
    task = tasks.resolve(task_name)
    row = tasks.rows(task, dataset)[0]
    texts = conditions.stand_ins("caption", kind_of(task), task, dataset, 0)
    return conditions.apply("caption", tasks.build_prompt(task, dataset, row, []), dataset, texts)


def test_caption_condition_on_class_folders_gives_the_folder_names_as_text(tmp_path: Path) -> None:
    dataset = load_class_folders(_folders(tmp_path / "set", ["red_circle", "orange_square"]), "set")
    prompt = _caption_prompt(dataset)
    assert all(isinstance(s, str) for s in prompt)
    text = " ".join(prompt)
    pattern = r"An? (red circle|orange square)\. This is a \w+\. An? (red circle|orange square)\. This is a \w+\. "
    assert re.fullmatch(pattern + r"An? (red circle|orange square)\. Question: What is this\? Answer: This is a", text)


def test_caption_condition_on_wordnet_ids_is_one_line_saying_why(tmp_path: Path) -> None:
    dataset = load_class_folders(_folders(tmp_path / "set", ["n01532829", "n02110063"]), "mini")
    assert dataset.descriptions == {}
    with pytest.raises(HarnessError) as exc:
        _caption_prompt(dataset)
    assert re.search(r"--images caption: image 'n0\d+/\d\.png' of dataset mini has no caption to give it as text "
                     r"\(its class folder name 'n0\d+' is not words", _one_line(exc))  # fmt: skip
