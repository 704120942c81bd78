"""tiny-vqav2 and tiny-okvqa: the tiny twins of vqav2 and okvqa, generated files in exactly the official layouts,
read by the official loader (``harness.data.vqa_official``) as the real sources are.

Under ``$HARNESS_HOME/data/tiny-vqav2/``: ``v2_OpenEnded_mscoco_{train2014,val2014}_questions.json``,
``v2_mscoco_{train2014,val2014}_annotations.json`` and the images ``train2014/COCO_train2014_<12-digit id>.jpg``
and ``val2014/...`` (tiny-shapes drawings). Four questions per image (colour, shape, a yes/no and a count), each
with ten annotator answers that mostly agree, with ids, confidences, question and answer types and the
multiple-choice answer, as in VQAv2: "circle" x8, "round", "ball"; "1" x7, "one" x2, "2".

Under ``$HARNESS_HOME/data/tiny-okvqa/``: ``OpenEnded_mscoco_{train2014,val2014}_questions.json`` and
``mscoco_{train2014,val2014}_annotations.json`` as in OK-VQA v1.1: two knowledge questions per image ("What
everyday object has this shape?"), five answers each given twice, with the stemmed ``answer`` beside the
``raw_answer`` ("wheel" / "wheels"), answer type "other" and knowledge categories as question types.

The ``vqav2_*`` and ``okvqa_*`` functions write the files' JSON for any questions; the unit tests of the
official loader use them too.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data.sources import SOURCES, Source, generated
from harness.data.tiny_files import CLASSES, generated_folder, photo, save_jpeg
from harness.data.types import Dataset
from harness.data.vqa_official import LAYOUTS, SPLITS, image_file, load_official

GENERATOR = 1  # bump when the generated files change, so that old copies are rewritten
IMAGES = {"train2014": 30, "val2014": 10}  # images per COCO subtype (val: the queries, train: few-shot support)
OKVQA_IMAGES = {"train2014": 30, "val2014": 15}

VQAV2_INFO = {
    "description": "This is v2.0 of the VQA dataset.",
    "url": "http://visualqa.org",
    "version": "2.0",
    "year": 2017,
    "contributor": "VQA Team",
    "date_created": "2017-04-26 17:07:13",
}
LICENSE = {
    "url": "http://creativecommons.org/licenses/by/4.0/",
    "name": "Creative Commons Attribution 4.0 International License",
}
OKVQA_INFO = {"year": 2019, "version": "1.1", "description": "This is v1.1 of the OK-VQA dataset."}


@dataclass(frozen=True)
class Question:
    """One question with its annotation. ``answers``: every annotator's answer in answer_id order (OK-VQA: the
    stemmed ``answer``); ``raw``: OK-VQA's ``raw_answer`` of each (empty for VQAv2)."""

    sub: str  # train2014 / val2014
    question_id: int
    image_id: int
    question: str
    question_type: str
    answer_type: str
    answers: Sequence[str]
    raw: Sequence[str] = ()


def okvqa_question(
    sub: str, question_id: int, image_id: int, question: str, category: str, five: Sequence[tuple[str, str]]
) -> Question:
    """An OK-VQA v1.1 question from its five (stemmed answer, raw answer) pairs: each is given twice."""
    twice = [pair for pair in five for _ in range(2)]
    return Question(
        sub, question_id, image_id, question, category, "other", [s for s, _ in twice], [r for _, r in twice]
    )


def vqav2_questions(sub: str, questions: Iterable[Question], info: dict = VQAV2_INFO) -> dict:
    """The JSON of ``v2_OpenEnded_mscoco_<sub>_questions.json``."""
    return {
        "info": info,
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "license": LICENSE,
        "data_subtype": sub,
        "questions": [
            {"image_id": q.image_id, "question": q.question, "question_id": q.question_id}
            for q in questions
            if q.sub == sub
        ],
    }


def vqav2_annotations(sub: str, questions: Iterable[Question], info: dict = VQAV2_INFO) -> dict:
    """The JSON of ``v2_mscoco_<sub>_annotations.json``: ten answers each, with ids 1..10 and confidences."""
    annotations = []
    for q in questions:
        if q.sub != sub:
            continue
        listed = [
            {"answer": a, "answer_confidence": "yes" if n % 3 else "maybe", "answer_id": n + 1}
            for n, a in enumerate(q.answers)
        ]
        annotations.append(
            {
                "question_type": q.question_type,
                "multiple_choice_answer": Counter(q.answers).most_common(1)[0][0],
                "answers": listed,
                "image_id": q.image_id,
                "answer_type": q.answer_type,
                "question_id": q.question_id,
            }
        )
    return {"info": info, "license": LICENSE, "data_subtype": sub, "annotations": annotations, "data_type": "mscoco"}


def okvqa_questions(sub: str, questions: Iterable[Question], info: dict = OKVQA_INFO) -> dict:
    """The JSON of ``OpenEnded_mscoco_<sub>_questions.json`` (OK-VQA v1.1)."""
    return {
        "license": LICENSE,
        "data_subtype": sub,
        "task_type": "Open-Ended",
        "questions": [
            {"image_id": q.image_id, "question": q.question, "question_id": q.question_id}
            for q in questions
            if q.sub == sub
        ],
        "info": info,
        "data_type": "mscoco",
    }


def okvqa_annotations(sub: str, questions: Iterable[Question], info: dict | None = None) -> dict:
    """The JSON of ``mscoco_<sub>_annotations.json`` (OK-VQA v1.1): ``answer`` and ``raw_answer`` per answer."""
    annotations = [
        {
            "image_id": q.image_id,
            "answer_type": q.answer_type,
            "question_type": q.question_type,
            "question_id": q.question_id,
            "answers": [
                {"answer_id": n + 1, "raw_answer": raw, "answer_confidence": "yes", "answer": stem}
                for n, (stem, raw) in enumerate(zip(q.answers, q.raw))
            ],
            "confidence": 3,
        }
        for q in questions
        if q.sub == sub
    ]
    return {
        "license": LICENSE,
        "data_subtype": sub,
        "annotations": annotations,
        "info": info or {"version": OKVQA_INFO["version"]},
        "data_type": "mscoco",
    }


# ----------------------------------------------------------------------------------------------------
# What the generated annotators say

# Colour: (answer as most annotators give it, a close variant one gives)
SHADE = {"red": "dark red", "green": "dark green", "blue": "navy", "yellow": "gold", "teal": "turquoise",
         "brown": "tan", "gray": "silver", "black": "dark gray"}  # fmt: skip
SYNONYMS = {"circle": ("round", "ball"), "rectangle": ("square", "box"), "triangle": ("pyramid", "triangular")}
# OK-VQA: (stemmed answer, raw answer) x 5 for "What everyday object has this shape?" and "Name something
# that is often this color."
OBJECTS = {
    "circle": [("wheel", "wheel"), ("wheel", "wheels"), ("coin", "coins"), ("ball", "ball"), ("plate", "plates")],
    "rectangle": [("door", "door"), ("book", "books"), ("brick", "bricks"), ("brick", "brick"), ("phone", "phone")],
    "triangle": [("pizza slice", "pizza slices"), ("yield sign", "yield sign"), ("pyramid", "pyramids"),
                 ("sail", "sail"), ("tent", "tent")],
}  # fmt: skip
THINGS = {
    "red": ["fire truck", "stop sign", "apple", "tomato", "blood"],
    "green": ["grass", "leaf", "tree", "frog", "lime"],
    "blue": ["sky", "ocean", "water", "jean", "blueberry"],
    "yellow": ["banana", "sun", "lemon", "taxi", "school bus"],
    "teal": ["ocean", "peacock", "sea", "water", "turquoise"],
    "brown": ["tree", "chocolate", "dirt", "wood", "bear"],
    "gray": ["elephant", "rock", "cloud", "concrete", "mouse"],
    "black": ["night", "coal", "crow", "tire", "cat"],
}
PLURAL = {"leaf": "leaves", "jean": "jeans", "blueberry": "blueberries", "tomato": "tomatoes", "mouse": "mice"}


def _images(name: str, counts: dict[str, int]) -> list[tuple[str, int, str, str, random.Random]]:
    """(sub, COCO image id, colour, shape, the image's own random source) for every image of a tiny source."""
    rng = random.Random(name)
    ids = rng.sample(range(1, 581_930), sum(counts.values()))
    out = []
    for sub, count in counts.items():
        for _ in range(count):
            color, shape = rng.choice(CLASSES)
            out.append((sub, ids.pop(), color, shape, random.Random(rng.random())))
    return out


def vqav2_items(image_id: int, sub: str, color: str, shape: str, rng: random.Random) -> list[Question]:
    other = rng.choice([c for c in SHADE if c != color])
    asked, truth = (color, "yes") if rng.random() < 0.5 else (other, "no")
    agree = 10 if rng.random() < 0.5 else 9
    yes_no = [truth] * agree + ["no" if truth == "yes" else "yes"] * (10 - agree)
    qa = [
        ("What color is the shape?", "what color is the", "other",
         [color] * 8 + [color.capitalize(), SHADE[color]]),
        ("What shape is in the picture?", "what", "other", [shape] * 8 + list(SYNONYMS[shape])),
        (f"Is there a {asked} shape?", "is there a", "yes/no", yes_no),
        ("How many shapes are there?", "how many", "number", ["1"] * 7 + ["one"] * 2 + ["2"]),
    ]  # fmt: skip
    return [
        Question(sub, image_id * 1000 + i, image_id, q, qtype, atype, answers)
        for i, (q, qtype, atype, answers) in enumerate(qa)
    ]


def okvqa_items(image_id: int, sub: str, color: str, shape: str) -> list[Question]:
    things = [(t, PLURAL.get(t, t + "s") if n % 2 else t) for n, t in enumerate(THINGS[color])]
    return [
        okvqa_question(sub, image_id * 10, image_id, "What everyday object has this shape?", "three", OBJECTS[shape]),
        okvqa_question(sub, image_id * 10 + 1, image_id, "Name something that is often this color.", "seven", things),
    ]


def _stamp(name: str) -> str:
    return f"{name}: generated by frozen-harness from tiny-shapes drawings (generator {GENERATOR})"


def write_official(name: str, layout: str, folder: Path) -> None:
    """Write tiny-vqav2 (``layout`` "vqav2") or tiny-okvqa ("okvqa") into ``folder``: question and annotation
    files under their official names, COCO-named JPEGs in train2014/ and val2014/."""
    questions: list[Question] = []
    for sub, image_id, color, shape, rng in _images(name, IMAGES if layout == "vqav2" else OKVQA_IMAGES):
        save_jpeg(photo(color, shape, rng), image_file(folder / sub, sub, image_id))
        if layout == "vqav2":
            questions += vqav2_items(image_id, sub, color, shape, rng)
        else:
            questions += okvqa_items(image_id, sub, color, shape)
    info = {**(VQAV2_INFO if layout == "vqav2" else OKVQA_INFO), "description": _stamp(name)}
    files = (vqav2_questions, vqav2_annotations) if layout == "vqav2" else (okvqa_questions, okvqa_annotations)
    for sub in SPLITS.values():
        for pattern, to_json in zip((LAYOUTS[layout].questions, LAYOUTS[layout].annotations), files):
            (folder / pattern.format(sub=sub)).write_text(json.dumps(to_json(sub, questions, info)))


def _current(name: str, layout: str, folder: Path) -> bool:
    """Written by this generator: its stamp is in the val questions file's ``info``."""
    try:
        text = (folder / LAYOUTS[layout].questions.format(sub=SPLITS["val"])).read_text()
        return json.loads(text)["info"]["description"] == _stamp(name)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_generated(name: str, layout: str) -> Dataset:
    """Generate ``name`` once, then read it as the real source of ``layout`` is read: the official file names
    per split, the images in <folder>/train2014 and <folder>/val2014, through ``load_official``."""
    folder = generated_folder(name, lambda f: write_official(name, layout, f), lambda f: _current(name, layout, f))
    spec = LAYOUTS[layout]
    questions = {split: folder / spec.questions.format(sub=sub) for split, sub in SPLITS.items()}
    annotations = {split: folder / spec.annotations.format(sub=sub) for split, sub in SPLITS.items()}
    return load_official(questions, annotations, {split: folder / sub for split, sub in SPLITS.items()}, name)


SOURCES.add("tiny-vqav2", Source(lambda: load_generated("tiny-vqav2", "vqav2"), generated))
SOURCES.add("tiny-okvqa", Source(lambda: load_generated("tiny-okvqa", "okvqa"), generated))
