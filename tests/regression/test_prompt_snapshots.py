"""The exact prompt text of every task whose data is at hand, at each shot count, pinned.

A change to any prompt, template, few-shot draw or episode builder shows up here as a diff. After
an intended change, regenerate with ``UPDATE_SNAPSHOTS=1 python -m pytest tests/regression``.
VQAv2, OK-VQA and COCO run on small files written in the official layouts (the unit tests' fixtures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import registry
from harness.config import replace_fields
from harness.data import sources as data
from harness.evaluation import tasks
from harness.evaluation.fewshot import draw_support
from harness.prompt import describe
from tests.unit.test_coco_data import coco_dir as make_coco_dir
from tests.unit.test_vqa_official import (
    dump,
    okvqa_annotations,
    okvqa_questions,
    vqav2_annotations,
    vqav2_questions,
    write_images,
)

SNAPSHOT = Path(__file__).with_name("prompts.json")
CASES = [  # (task, shot counts, task overrides)
    ("easyvqa", [0, 1, 4], {}),
    ("easyvqa-tiny", [0, 2], {}),
    ("coco-tiny", [0, 1], {}),
    ("miniimagenet-open-tiny", [0], {}),
    (
        "miniimagenet-open-tiny",
        [0],
        {"options": {"ways": 5, "inner_shots": 3, "repeats": 2, "induction": True, "episodes": 40}},
    ),
    ("vqav2", [0, 1], {}),
    ("okvqa", [0], {}),
    ("coco", [0, 1], {}),
]


@pytest.fixture(scope="module")
def official_dirs(tmp_path_factory) -> None:
    """VQAv2 and OK-VQA in their official layouts, pointed to by the harness's environment variables."""
    root = tmp_path_factory.mktemp("official")
    write_images(root)
    for sub in ("train2014", "val2014"):
        dump(root / f"v2_OpenEnded_mscoco_{sub}_questions.json", vqav2_questions(sub))
        dump(root / f"v2_mscoco_{sub}_annotations.json", vqav2_annotations(sub))
    dump(
        root / "OpenEnded_mscoco_val2014_questions.json", okvqa_questions("val2014")
    )  # the fixture's OK-VQA is val only
    dump(root / "mscoco_val2014_annotations.json", okvqa_annotations("val2014"))
    coco = make_coco_dir.__wrapped__(root)  # the COCO + Karpathy layout of tests/unit/test_coco_data.py
    env = {"HARNESS_VQAV2_DIR": str(root), "HARNESS_OKVQA_DIR": str(root), "HARNESS_COCO_DIR": str(coco)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    for source in ("vqav2", "okvqa", "coco"):
        data._CACHE.pop(source, None)
    yield
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    for source in ("vqav2", "okvqa", "coco"):
        data._CACHE.pop(source, None)


def current() -> dict[str, list[str]]:
    out = {}
    for name, shot_counts, overrides in CASES:
        task = registry.TASKS.get(name)
        if overrides:
            task = replace_fields(task, overrides, name)
        dataset = tasks.load(task)
        for shots in shot_counts:
            pool = tasks.support_pool(task, dataset) if shots else []
            key = f"{name}{'+' + json.dumps(overrides, sort_keys=True) if overrides else ''} shots={shots}"
            out[key] = [
                describe(tasks.build_prompt(task, dataset, row, draw_support(task.name, 0, row, pool, shots)))
                for row in tasks.rows(task, dataset)[:2]
            ]
    return out


def test_prompts_match_the_snapshot(official_dirs):
    got = current()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == expected[key], key
