"""easyvqa from the ``easy-vqa`` PyPI package: 64x64 shape images with templated questions.

Training captions ("a blue circle.") are written from each training image's own colour and shape,
read off its questions: wh-questions name them directly ("what color is the circle?" -> blue), and a
yes/no question asserts one when the answer and the negation agree ("is there not a red shape?" no
-> red). Images whose questions never pin both down get no caption.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from pathlib import Path

from harness.data.shapes import COLORS, SHAPES, answer_type, caption, question_type
from harness.data.sources import SOURCES, Source, module_available, module_missing
from harness.data.types import Caption, Dataset, Row
from harness.errors import HarnessError

INSTALL = "pip install easy-vqa==1.0"
_WORD = re.compile(r"\b(" + "|".join(COLORS + SHAPES) + r")\b")


def attributes(question: str, answer: str) -> dict[str, str]:
    """What one question-answer pair says about the image: {"color": ..., "shape": ...}."""
    found: dict[str, str] = {}
    named = _WORD.findall(question)
    if answer in COLORS or answer in SHAPES:
        found["color" if answer in COLORS else "shape"] = answer
        for word in named:
            found["color" if word in COLORS else "shape"] = word
    elif answer in ("yes", "no") and len(named) == 1:
        negated = " not " in f" {question} " or question.startswith("is no ")
        if (answer == "yes") != negated:
            found["color" if named[0] in COLORS else "shape"] = named[0]
    return found


def load() -> Dataset:
    try:
        import easy_vqa
    except ImportError:
        raise HarnessError(f"data source easyvqa needs the easy-vqa package: run `{INSTALL}`") from None
    digest = hashlib.sha256()
    splits, image_paths, captions, descriptions = {}, {}, {}, {}
    for split, questions, images in (
        ("train", easy_vqa.get_train_questions, easy_vqa.get_train_image_paths),
        ("test", easy_vqa.get_test_questions, easy_vqa.get_test_image_paths),
    ):
        texts, answers, image_ids = questions()
        for image_id, path in sorted(images().items()):
            image_paths[f"{split}/{image_id}"] = Path(path)
        rows, seen = [], {}
        for index, (q, a, image_id) in enumerate(zip(texts, answers, image_ids)):
            key = f"{split}/{image_id}"
            digest.update(f"{key}|{q}|{a}\n".encode())
            rows.append(Row(f"{split}-{index}", key, q, (a,) * 10, answer_type(a), question_type(a)))
            seen.setdefault(key, {}).update(attributes(q, a))
        splits[split] = rows
        captions[split] = [
            Caption(key, caption(attrs["color"], attrs["shape"]))
            for key, attrs in sorted(seen.items())
            if "color" in attrs and "shape" in attrs
        ]
        for key, attrs in seen.items():  # the rest: what their questions say, for --images caption
            if not ("color" in attrs and "shape" in attrs):
                descriptions[key] = (
                    f"a {attrs['color']} shape." if "color" in attrs else f"a {attrs.get('shape', 'shape')}."
                )
    for key in sorted(image_paths):
        digest.update(f"{key}:{image_paths[key].stat().st_size}\n".encode())
    version = f"easy-vqa=={importlib.metadata.version('easy-vqa')}:{digest.hexdigest()[:16]}"
    return Dataset("easyvqa", version, splits, captions, image_paths, descriptions=descriptions)


SOURCES.add(
    "easyvqa",
    Source(load, module_available("easy_vqa", INSTALL), missing=module_missing("easyvqa", "easy_vqa", INSTALL)),
)
