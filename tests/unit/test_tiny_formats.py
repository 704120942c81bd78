"""The tiny twins' generated sources: files in exactly the real sources' layouts (file names, JSON keys, table
columns), readable by the real sources' own loaders, written once, atomically, and rewritten only when stale."""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from harness.data import built, offline, tiny_built, tiny_files, tiny_folders, tiny_vqa
from harness.data import vqa_official as vo
from harness.data.sources import SOURCES
from harness.kinds.naming import display_name

TINY = ("tiny-vqav2", "tiny-okvqa", "tiny-miniimagenet", "tiny-frozen-episodes", "tiny-emoji", "tiny-emoji6",
        "tiny-tuxpaint")  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    for var in (vo.ENV_VQAV2, vo.ENV_OKVQA, vo.ENV_COCO, "HARNESS_MINIIMAGENET_DIR", "HARNESS_FROZEN_EPISODES_DIR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


def _load(name: str):
    return SOURCES.get(name).load()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` (itself included) by inode and modification time."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in [folder, *folder.rglob("*")]
    }


@pytest.mark.parametrize("name", TINY)
def test_a_second_load_rewrites_nothing(home: Path, name: str) -> None:
    first = _load(name)
    folder = home / "data" / name
    before = _snapshot(folder)
    assert _load(name).version == first.version
    assert _snapshot(folder) == before
    assert sorted(p.name for p in (home / "data").iterdir()) == [name]  # no staging folders left behind


# ----------------------------------------------------------------------------------------------------
# VQAv2 and OK-VQA: the official files


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_tiny_vqav2_is_the_official_vqav2_layout(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _load("tiny-vqav2")
    folder = home / "data" / "tiny-vqav2"
    files = tiny_files.listing(folder)
    assert {f for f in files if "/" not in f} == {
        f"{kind}_{sub}_{what}.json"
        for sub in ("train2014", "val2014")
        for kind, what in (("v2_OpenEnded_mscoco", "questions"), ("v2_mscoco", "annotations"))
    }
    for sub, count in tiny_vqa.IMAGES.items():
        images = sorted(f for f in files if f.startswith(f"{sub}/"))
        assert len(images) == count and all(re.fullmatch(rf"{sub}/COCO_{sub}_\d{{12}}\.jpg", f) for f in images)
    questions = _json(folder / "v2_OpenEnded_mscoco_val2014_questions.json")
    assert list(questions) == ["info", "task_type", "data_type", "license", "data_subtype", "questions"]
    assert questions["data_subtype"] == "val2014" and len(questions["questions"]) == 40
    assert all(list(q) == ["image_id", "question", "question_id"] for q in questions["questions"])
    annotations = _json(folder / "v2_mscoco_val2014_annotations.json")
    assert list(annotations) == ["info", "license", "data_subtype", "annotations", "data_type"]
    keys = ["question_type", "multiple_choice_answer", "answers", "image_id", "answer_type", "question_id"]
    assert all(list(a) == keys for a in annotations["annotations"])
    for a in annotations["annotations"]:
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        assert all(list(x) == ["answer", "answer_confidence", "answer_id"] for x in a["answers"])
        assert (folder / "val2014" / f"COCO_val2014_{a['image_id']:012d}.jpg").is_file()
    assert {a["answer_type"] for a in annotations["annotations"]} == {"other", "yes/no", "number"}
    disagreeing = [a for a in annotations["annotations"] if len({x["answer"] for x in a["answers"]}) > 1]
    assert len(disagreeing) >= 30  # annotators disagree, so the official normalisation runs
    shape = next(r for r in ds.rows("val") if r.question_type == "what")
    assert sorted(set(shape.answers) - {shape.answers[0]}) and shape.answers.count(shape.answers[0]) == 8
    assert [len(ds.rows(s)) for s in ("train", "val")] == [120, 40]
    assert tuple(ds.image(ds.rows("val")[0].image).shape) == (32, 32, 3)
    monkeypatch.setenv(vo.ENV_VQAV2, str(folder))  # the real source reads the same folder alike
    real = vo.load_vqav2()
    assert (real.version, real.splits, real.image_paths) == (ds.version, ds.splits, ds.image_paths)


def test_tiny_okvqa_is_the_official_okvqa_layout(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _load("tiny-okvqa")
    folder = home / "data" / "tiny-okvqa"
    assert {f for f in tiny_files.listing(folder) if "/" not in f} == {
        f"{kind}_{sub}_{what}.json"
        for sub in ("train2014", "val2014")
        for kind, what in (("OpenEnded_mscoco", "questions"), ("mscoco", "annotations"))
    }
    questions = _json(folder / "OpenEnded_mscoco_val2014_questions.json")
    assert list(questions) == ["license", "data_subtype", "task_type", "questions", "info", "data_type"]
    annotations = _json(folder / "mscoco_val2014_annotations.json")["annotations"]
    assert len(annotations) == len(questions["questions"]) == 30
    for a in annotations:
        assert list(a) == ["image_id", "answer_type", "question_type", "question_id", "answers", "confidence"]
        assert a["answer_type"] == "other"
        assert all(list(x) == ["answer_id", "raw_answer", "answer_confidence", "answer"] for x in a["answers"])
        stems = [x["answer"] for x in a["answers"]]
        assert len(stems) == 10 and stems[0::2] == stems[1::2]  # five answers, each given twice
    assert any(x["raw_answer"] != x["answer"] for a in annotations for x in a["answers"])
    assert {r.question_type for r in ds.rows("val")} == {"three", "seven"}
    monkeypatch.setenv(vo.ENV_OKVQA, str(folder))
    real = vo.load_okvqa()
    assert (real.version, real.splits) == (ds.version, ds.splits)


def test_the_question_files_are_stamped_and_rewritten_when_stale(home: Path) -> None:
    _load("tiny-vqav2")
    path = home / "data" / "tiny-vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    stale = _json(path)
    stale["info"]["description"] = "made by an older generator"
    path.write_text(json.dumps(stale))
    _load("tiny-vqav2")
    assert _json(path)["info"]["description"] == tiny_vqa._stamp("tiny-vqav2")


# ----------------------------------------------------------------------------------------------------
# Class folders and Frozen's episode files


def test_tiny_miniimagenet_is_a_folder_per_class(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _load("tiny-miniimagenet")
    folder = home / "data" / "tiny-miniimagenet"
    assert tiny_files.listing(folder) == tiny_folders.miniimagenet_files()
    assert "red_circle/00.jpg" in tiny_files.listing(folder)
    assert len(ds.classes) == 24 and all(len(keys) == tiny_folders.PER_CLASS for keys in ds.classes.values())
    assert display_name("red_circle") == "red circle" and "red_circle" in ds.classes
    monkeypatch.setenv("HARNESS_MINIIMAGENET_DIR", str(folder))
    assert _load("miniimagenet").classes == ds.classes


def test_tiny_frozen_episodes_are_the_release_layout(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _load("tiny-frozen-episodes")
    folder = home / "data" / "tiny-frozen-episodes"
    assert tiny_files.listing(folder) == tiny_folders.episode_files()
    entries = _json(folder / "open_ended_mi_shots_3_ways_2_all_questions.json")
    support = [f"{field}_{i}" for i in range(1, 7) for field in ("image", "caption")]
    assert all(list(e) == [*support, "question", "question_image", "answer"] for e in entries)
    assert entries[0]["image_1"] == "open_ended_mi_shots_3_ways_2_id_0_image_1.jpg"
    assert re.fullmatch(r"This is a \w+\.", entries[0]["caption_1"])
    assert list(ds.splits) == ["test", "shots_1_ways_2", "shots_3_ways_2"] and len(ds.rows("test")) == 20
    monkeypatch.setenv("HARNESS_FROZEN_EPISODES_DIR", str(folder))
    renamed = [replace(r, id=r.id.replace("tiny-frozen-episodes", "frozen-episodes")) for r in ds.rows("test")]
    assert _load("frozen-episodes").rows("test") == renamed


# ----------------------------------------------------------------------------------------------------
# Built tables: emoji and tuxpaint


def _table(folder: Path):
    import datasets

    return datasets.load_from_disk(str(folder / "table"))


def test_tiny_emoji_is_the_built_emoji_layout(home: Path) -> None:
    ds = _load("tiny-emoji")
    folder = home / "data" / "tiny-emoji"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "table"]
    manifest = built.valid_manifest(folder, "tiny-emoji")
    assert manifest["format"] == built.FORMAT
    assert manifest["options"] == {"vendors": list(offline.EMOJI_VENDORS), "limit": None}
    assert set(manifest["files"]) == {p for p in tiny_files.listing(folder) if p.startswith("table/")}
    table = _table(folder)
    assert table.column_names == ["concept", "short_name", "category", "subcategory", "vendor", "skin_tone", "image"]
    assert set(table["skin_tone"]) == {""} and table["vendor"][:3] == list(offline.EMOJI_VENDORS)
    assert len(ds.classes) == 24 and ds.classes["red circle"] == [
        "google/red_circle",
        "twitter/red_circle",
        "facebook/red_circle",
    ]
    assert [len(ds.captions[s]) for s in ("train", "test")] == [48, 24]
    assert all(c.image.startswith("twitter/") for c in ds.captions["test"])
    styles = {v: ds.image(f"{v}/red_circle") for v in offline.EMOJI_VENDORS}
    assert all(tuple(im.shape) == (64, 64, 3) for im in styles.values())
    assert len({im.float().mean().item() for im in styles.values()}) == 3  # three drawing styles
    shutil.copytree(folder, home / "data" / "emoji")  # the real source reads it as its own build
    real = built.load_emoji()
    assert (real.name, real.version, real.classes) == ("emoji", ds.version, ds.classes)


def test_tiny_emoji6_is_the_built_emoji6_layout(home: Path) -> None:
    ds = _load("tiny-emoji6")
    folder = home / "data" / "tiny-emoji6"
    manifest = built.valid_manifest(folder, "tiny-emoji6")
    assert manifest["options"] == offline._options("emoji6", None, None)
    assert manifest["counts"]["per_vendor"] == {v: 24 for v in offline.EMOJI_KNOWN_VENDORS}
    assert ds.classes["red circle"] == [f"{v}/red_circle" for v in offline.EMOJI_KNOWN_VENDORS]
    assert [len(ds.captions[s]) for s in ("train", "test")] == [120, 24]
    styles = {v: ds.image(f"{v}/red_circle") for v in offline.EMOJI_KNOWN_VENDORS}
    assert len({im.float().mean().item() for im in styles.values()}) == 6  # six drawing styles
    shutil.copytree(folder, home / "data" / "emoji6")  # the real source reads it as its own build
    real = SOURCES.get("emoji6").load()
    assert (real.name, real.version, real.classes) == ("emoji6", ds.version, ds.classes)


def test_tiny_tuxpaint_is_the_built_tuxpaint_layout(home: Path) -> None:
    ds = _load("tiny-tuxpaint")
    folder = home / "data" / "tiny-tuxpaint"
    manifest = built.valid_manifest(folder, "tiny-tuxpaint")
    assert manifest["counts"] == {"rows": 96, "train": 80, "test": 16}
    table = _table(folder)
    assert table.column_names == ["key", "caption", "category", "split", "image"]
    assert all(offline.tuxpaint_split(k) == s for k, s in zip(table["key"], table["split"]))
    assert [len(ds.rows(s)) for s in ("train", "test")] == [80, 16]
    row = ds.rows("test")[0]
    assert row.answer_type == "caption"
    assert re.fullmatch(r"A (small|big) \w+ \w+( with a dark outline)?\.", row.answers[0])
    shutil.copytree(folder, home / "data" / "tuxpaint")
    real = built.load_tuxpaint()
    assert (real.name, real.version, real.splits) == ("tuxpaint", ds.version, ds.splits)


def test_a_corrupt_build_is_rewritten(home: Path) -> None:
    _load("tiny-tuxpaint")
    table = next((home / "data" / "tiny-tuxpaint" / "table").glob("*.arrow"))
    table.write_bytes(b"not arrow")
    assert len(_load("tiny-tuxpaint").rows("test")) == 16
    assert tiny_built._current("tiny-tuxpaint", home / "data" / "tiny-tuxpaint")


# ----------------------------------------------------------------------------------------------------
# Written once, atomically


def test_racing_writers_leave_one_whole_folder(home: Path) -> None:
    writes: list[int] = []
    gate = threading.Barrier(4)

    def write(folder: Path) -> None:
        gate.wait()  # every writer has found the folder missing and writes its own copy
        writes.append(1)
        for n in range(20):
            (folder / f"{n}.txt").write_text(str(n))

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(tiny_files.generated_folder("race", write, lambda f: True)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folder = home / "data" / "race"
    assert results == [folder] * 4 and len(writes) == 4
    assert tiny_files.listing(folder) == {f"{n}.txt" for n in range(20)}
    assert sorted(p.name for p in (home / "data").iterdir()) == ["race"]
