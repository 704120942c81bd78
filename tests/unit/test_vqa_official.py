"""VQAv2 and OK-VQA: small files in exactly the official layouts, real JPEGs, every validation error,
the environment-variable loaders, and hub copies through save_to_disk folders."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from PIL import Image

from harness import registry
from harness.data import tiny_vqa as tv
from harness.data import vqa_official as vo
from harness.errors import HarnessError

# (folder, image id, colour, size): two val2014 images, one train2014 image.
IMAGES = [
    ("val2014", 42, (200, 40, 40), (24, 16)),
    ("val2014", 73, (40, 200, 40), (20, 20)),
    ("train2014", 9, (40, 40, 200), (16, 24)),
]


# The hub mappings are data in the task files; the local tables below have exactly their shape.
HUB_VQAV2 = registry.TASKS.get("vqav2-hub").hub
HUB_OKVQA = registry.TASKS.get("okvqa-hub").hub


def ten(*counts: tuple[str, int]) -> list[str]:
    """Ten annotator answers from (answer, how many) pairs, in order."""
    out = [a for a, n in counts for _ in range(n)]
    assert len(out) == 10
    return out


# (sub, question_id, image_id, question, question_type, answer_type, 10 answers)
VQAV2 = [
    (
        "val2014",
        42000,
        42,
        "What is this photo taken looking through?",
        "what is this",
        "other",
        ten(("net", 8), ("netting", 1), ("mesh", 1)),
    ),
    ("val2014", 42001, 42, "Is the man wearing a helmet?", "is the man", "yes/no", ten(("yes", 9), ("no", 1))),
    (
        "val2014",
        42002,
        42,
        "How many people are in the picture?",
        "how many",
        "number",
        ten(("2", 6), ("3", 3), ("two", 1)),
    ),
    (
        "val2014",
        73000,
        73,
        "What color is the motorcycle?",
        "what color is the",
        "other",
        ten(("red", 7), ("red and black", 2), ("maroon", 1)),
    ),
    ("train2014", 9000, 9, "Are there any vegetables on the plate?", "are there any", "yes/no", ten(("yes", 10))),
]

# OK-VQA v1.1: 5 answers, each given twice (answer_id 1..10), stemmed `answer` plus `raw_answer`.
OKVQA = [
    (
        "val2014",
        420,
        42,
        "What sport is being played?",
        "eight",
        [("baseball", "baseball")] * 4 + [("softball", "softball")],
    ),
    (
        "val2014",
        730,
        73,
        "What brand is this motorcycle?",
        "one",
        [("honda", "Honda"), ("honda", "honda"), ("yamaha", "Yamaha"), ("ducati", "ducati"), ("race", "racing")],
    ),
]


def write_images(root: Path) -> None:
    for folder, image_id, colour, size in IMAGES:
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(root / folder / f"COCO_{folder}_{image_id:012d}.jpg", quality=95)


# The files' JSON comes from the tiny twins' generator (one copy of the official layouts).
VQAV2_QUESTIONS = [tv.Question(*row) for row in VQAV2]
OKVQA_QUESTIONS = [tv.okvqa_question(*row) for row in OKVQA]


def vqav2_questions(sub: str) -> dict:
    return tv.vqav2_questions(sub, VQAV2_QUESTIONS)


def vqav2_annotations(sub: str) -> dict:
    obj = tv.vqav2_annotations(sub, VQAV2_QUESTIONS)
    for annotation in obj["annotations"]:
        if annotation["question_id"] == 42002:  # answer_id order, not file order, is the answer order
            annotation["answers"].reverse()
    return obj


def okvqa_questions(sub: str) -> dict:
    return tv.okvqa_questions(sub, OKVQA_QUESTIONS)


def okvqa_annotations(sub: str) -> dict:
    return tv.okvqa_annotations(sub, OKVQA_QUESTIONS)


def dump(path: Path, obj: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture
def vqav2_dir(tmp_path: Path) -> Path:
    """A HARNESS_VQAV2_DIR: official file names, images in train2014/ and val2014/."""
    root = tmp_path / "vqav2"
    write_images(root)
    for sub in ("train2014", "val2014"):
        dump(root / f"v2_OpenEnded_mscoco_{sub}_questions.json", vqav2_questions(sub))
        dump(root / f"v2_mscoco_{sub}_annotations.json", vqav2_annotations(sub))
    return root


def official(root: Path, subs=("train2014", "val2014")) -> tuple[dict, dict, dict]:
    split = {"train2014": "train", "val2014": "val"}
    q = {split[s]: root / f"v2_OpenEnded_mscoco_{s}_questions.json" for s in subs}
    a = {split[s]: root / f"v2_mscoco_{s}_annotations.json" for s in subs}
    i = {split[s]: root / s for s in subs}
    return q, a, i


def load_val(root: Path, name: str = "vqav2"):
    return vo.load_official(*official(root, ("val2014",)), name)


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(HarnessError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------------
# Official files: rows, answers, images, version


def test_vqav2_rows_in_file_order_with_answers_by_answer_id(vqav2_dir: Path) -> None:
    ds = vo.load_official(*official(vqav2_dir), "vqav2")
    assert ds.name == "vqav2"
    assert sorted(ds.splits) == ["train", "val"]
    assert ds.captions == {"train": [], "val": []}
    val = ds.rows("val")
    assert [r.id for r in val] == ["42000", "42001", "42002", "73000"]
    assert [r.image for r in val] == ["val/42", "val/42", "val/42", "val/73"]
    assert [r.answer_type for r in val] == ["other", "yes/no", "number", "other"]
    assert [r.question_type for r in val] == ["what is this", "is the man", "how many", "what color is the"]
    assert val[0].question == "What is this photo taken looking through?"
    assert val[0].answers == ("net",) * 8 + ("netting", "mesh")
    assert val[2].answers == ("2",) * 6 + ("3",) * 3 + ("two",)  # reversed in the file, sorted back
    assert all(len(r.answers) == 10 for r in val)
    (train,) = ds.rows("train")
    assert (train.id, train.image, train.answers) == ("9000", "train/9", ("yes",) * 10)
    assert ds.image_paths == {
        "val/42": vqav2_dir / "val2014" / "COCO_val2014_000000000042.jpg",
        "val/73": vqav2_dir / "val2014" / "COCO_val2014_000000000073.jpg",
        "train/9": vqav2_dir / "train2014" / "COCO_train2014_000000000009.jpg",
    }
    assert ds.version.startswith("vqa-official:") and len(ds.version.split(":")[1]) == 16


def test_images_decode_to_uint8_hwc_and_are_kept(vqav2_dir: Path) -> None:
    ds = vo.load_official(*official(vqav2_dir), "vqav2")
    for folder, image_id, colour, (w, h) in IMAGES:
        key = f"{'val' if folder == 'val2014' else 'train'}/{image_id}"
        image = ds.image(key)
        assert image.dtype.is_floating_point is False and tuple(image.shape) == (h, w, 3)
        mean = image.float().mean(dim=(0, 1)).tolist()
        assert all(abs(m - c) < 8 for m, c in zip(mean, colour)), (key, mean, colour)
        assert ds.image(key) is image


def test_missing_image_file_is_not_checked_at_load_but_named_on_use(vqav2_dir: Path) -> None:
    (vqav2_dir / "val2014" / "COCO_val2014_000000000073.jpg").unlink()
    ds = load_val(vqav2_dir)
    assert "COCO_val2014_000000000073.jpg: image file not found" in one_line_error(ds.image, "val/73")


def test_subtype_comes_from_the_questions_file(vqav2_dir: Path) -> None:
    q = vqav2_questions("val2014")
    q["data_subtype"] = "test-dev2015"
    dump(vqav2_dir / "v2_OpenEnded_mscoco_val2014_questions.json", q)
    ds = load_val(vqav2_dir)
    assert ds.image_paths["val/42"].name == "COCO_test-dev2015_000000000042.jpg"


def test_version_is_stable_and_changes_with_either_file(vqav2_dir: Path) -> None:
    first = load_val(vqav2_dir).version
    assert load_val(vqav2_dir).version == first
    ann = vqav2_annotations("val2014")
    ann["annotations"][0]["answers"][9]["answer"] = "fence"
    dump(vqav2_dir / "v2_mscoco_val2014_annotations.json", ann)
    changed = load_val(vqav2_dir)
    assert changed.version != first
    assert changed.rows("val")[0].answers[-1] == "fence"
    q = vqav2_questions("val2014")
    q["questions"][1]["question"] = "Is the man wearing a hat?"
    dump(vqav2_dir / "v2_OpenEnded_mscoco_val2014_questions.json", q)
    assert load_val(vqav2_dir).version not in (first, changed.version)


# ----------------------------------------------------------------------------------------------------
# Environment variables


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in (vo.ENV_VQAV2, vo.ENV_OKVQA, vo.ENV_COCO):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_load_vqav2_from_env(vqav2_dir: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(vo.ENV_VQAV2, str(vqav2_dir))
    ds = vo.load_vqav2()
    assert ds.name == "vqav2"
    assert [len(ds.rows(s)) for s in ("train", "val")] == [1, 4]
    assert tuple(ds.image("val/73").shape) == (20, 20, 3)


def test_env_with_only_val_files_gives_a_val_only_source(vqav2_dir: Path, clean_env: pytest.MonkeyPatch) -> None:
    (vqav2_dir / "v2_OpenEnded_mscoco_train2014_questions.json").unlink()
    (vqav2_dir / "v2_mscoco_train2014_annotations.json").unlink()
    clean_env.setenv(vo.ENV_VQAV2, str(vqav2_dir))
    ds = vo.load_vqav2()
    assert list(ds.splits) == ["val"]
    assert "no split 'train' (has val)" in one_line_error(ds.rows, "train")


def test_load_okvqa_from_env_with_images_from_coco_dir(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    okvqa, coco = tmp_path / "okvqa", tmp_path / "coco"
    write_images(coco)
    dump(okvqa / "OpenEnded_mscoco_val2014_questions.json", okvqa_questions("val2014"))
    dump(okvqa / "mscoco_val2014_annotations.json", okvqa_annotations("val2014"))
    clean_env.setenv(vo.ENV_OKVQA, str(okvqa))
    clean_env.setenv(vo.ENV_COCO, str(coco))
    ds = vo.load_okvqa()
    assert ds.name == "okvqa" and list(ds.splits) == ["val"]
    first, second = ds.rows("val")
    assert (first.id, first.image, first.answer_type, first.question_type) == ("420", "val/42", "other", "eight")
    assert first.answers == ("baseball",) * 8 + ("softball",) * 2
    # the stemmed `answer`, each of the 5 given twice, in answer_id order
    assert second.answers == (
        "honda",
        "honda",
        "honda",
        "honda",
        "yamaha",
        "yamaha",
        "ducati",
        "ducati",
        "race",
        "race",
    )
    assert second.question_type == "one"
    assert ds.image_paths["val/73"] == coco / "val2014" / "COCO_val2014_000000000073.jpg"
    assert tuple(ds.image("val/42").shape) == (16, 24, 3)


def test_missing_env_var_says_what_to_set_and_which_files(clean_env: pytest.MonkeyPatch) -> None:
    message = one_line_error(vo.load_vqav2)
    assert message.startswith("data source vqav2 needs HARNESS_VQAV2_DIR: set it to the folder holding")
    assert "v2_OpenEnded_mscoco_{train2014,val2014}_questions.json" in message
    assert "v2_mscoco_{train2014,val2014}_annotations.json" in message
    message = one_line_error(vo.load_okvqa)
    assert message.startswith("data source okvqa needs HARNESS_OKVQA_DIR")
    assert (
        "OpenEnded_mscoco_{train2014,val2014}_questions.json and mscoco_{train2014,val2014}_annotations.json" in message
    )
    assert "HARNESS_COCO_DIR" in message


def test_env_folder_errors(tmp_path: Path, vqav2_dir: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(vo.ENV_VQAV2, str(tmp_path / "nowhere"))
    assert "HARNESS_VQAV2_DIR=" in one_line_error(vo.load_vqav2) and "folder not found" in one_line_error(vo.load_vqav2)
    empty = tmp_path / "empty"
    empty.mkdir()
    clean_env.setenv(vo.ENV_VQAV2, str(empty))
    assert "holds none of the question files" in one_line_error(vo.load_vqav2)
    clean_env.setenv(vo.ENV_VQAV2, str(vqav2_dir))
    (vqav2_dir / "v2_mscoco_val2014_annotations.json").unlink()
    message = one_line_error(vo.load_vqav2)
    assert (
        "v2_mscoco_val2014_annotations.json: annotations file for v2_OpenEnded_mscoco_val2014_questions.json not found"
        in message
    )


def test_okvqa_without_image_folder_asks_for_coco_dir(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    okvqa = tmp_path / "okvqa"
    dump(okvqa / "OpenEnded_mscoco_val2014_questions.json", okvqa_questions("val2014"))
    dump(okvqa / "mscoco_val2014_annotations.json", okvqa_annotations("val2014"))
    clean_env.setenv(vo.ENV_OKVQA, str(okvqa))
    message = one_line_error(vo.load_okvqa)
    assert "image folder val2014/ not found" in message and "set HARNESS_COCO_DIR" in message


# ----------------------------------------------------------------------------------------------------
# Validation errors: one line, naming the file and the question_id / field


def _edit(root: Path, which: str, change) -> Path:
    if which == "questions":
        obj, path = vqav2_questions("val2014"), root / "v2_OpenEnded_mscoco_val2014_questions.json"
    else:
        obj, path = vqav2_annotations("val2014"), root / "v2_mscoco_val2014_annotations.json"
    obj = copy.deepcopy(obj)
    change(obj)
    dump(path, obj)
    return path


def test_malformed_json_gives_line_number(vqav2_dir: Path) -> None:
    path = vqav2_dir / "v2_mscoco_val2014_annotations.json"
    text = json.dumps(vqav2_annotations("val2014"), indent=1).splitlines()
    text[6] = text[6].rstrip(",") + ",,"
    path.write_text("\n".join(text))
    message = one_line_error(load_val, vqav2_dir)
    assert message.startswith(f"{path}: malformed JSON at line 7 column")


def test_question_without_annotation(vqav2_dir: Path) -> None:
    path = _edit(vqav2_dir, "annotations", lambda o: o["annotations"].pop(2))
    assert one_line_error(load_val, vqav2_dir) == (
        f"{path}: no annotation for question_id 42002 (from {vqav2_dir / 'v2_OpenEnded_mscoco_val2014_questions.json'})"
    )


def test_annotation_without_question(vqav2_dir: Path) -> None:
    path = _edit(vqav2_dir, "questions", lambda o: o["questions"].pop(3))
    message = one_line_error(load_val, vqav2_dir)
    annotations = vqav2_dir / "v2_mscoco_val2014_annotations.json"
    assert message.startswith(f"{annotations}: annotations[3]: question_id 73000 has no question in {path}")


def test_duplicate_question_ids(vqav2_dir: Path) -> None:
    def dup_question(o):
        o["questions"].append(dict(o["questions"][1]))

    path = _edit(vqav2_dir, "questions", dup_question)
    assert (
        one_line_error(load_val, vqav2_dir)
        == f"{path}: questions[4] (question_id 42001): duplicate question_id, also questions[1]"
    )
    _edit(vqav2_dir, "questions", lambda o: None)

    def dup_annotation(o):
        o["annotations"].append(copy.deepcopy(o["annotations"][0]))

    path = _edit(vqav2_dir, "annotations", dup_annotation)
    expected = f"{path}: annotations[4] (question_id 42000): duplicate question_id, also annotations[0]"
    assert one_line_error(load_val, vqav2_dir) == expected


@pytest.mark.parametrize(
    "which, change, expected",
    [
        (
            "questions",
            lambda o: o["questions"][2].pop("question"),
            "questions[2] (question_id 42002): missing key 'question'",
        ),
        ("questions", lambda o: o["questions"][0].pop("question_id"), "questions[0]: missing key 'question_id'"),
        ("questions", lambda o: o.pop("data_subtype"), "top level: missing key 'data_subtype'"),
        (
            "questions",
            lambda o: o["questions"][1].update(image_id="42"),
            "questions[1] (question_id 42001): 'image_id' must be int, got str",
        ),
        (
            "annotations",
            lambda o: o["annotations"][1].pop("answer_type"),
            "annotations[1] (question_id 42001): missing key 'answer_type'",
        ),
        (
            "annotations",
            lambda o: o["annotations"][3]["answers"][4].pop("answer_id"),
            "annotations[3] (question_id 73000) answers[4]: missing key 'answer_id'",
        ),
        (
            "annotations",
            lambda o: o["annotations"][0].update(answers=[]),
            "annotations[0] (question_id 42000): 'answers' is empty",
        ),
        ("annotations", lambda o: o.pop("annotations"), "top level: missing key 'annotations'"),
    ],
)
def test_missing_or_bad_fields(vqav2_dir: Path, which: str, change, expected: str) -> None:
    path = _edit(vqav2_dir, which, change)
    assert one_line_error(load_val, vqav2_dir) == f"{path}: {expected}"


def test_image_id_mismatch(vqav2_dir: Path) -> None:
    path = _edit(vqav2_dir, "annotations", lambda o: o["annotations"][3].update(image_id=74))
    assert one_line_error(load_val, vqav2_dir) == (
        f"{path}: annotations[3] (question_id 73000): image_id 74, but v2_OpenEnded_mscoco_val2014_questions.json gives image_id 73"
    )


def test_empty_split(vqav2_dir: Path) -> None:
    path = _edit(vqav2_dir, "questions", lambda o: o.update(questions=[]))
    assert one_line_error(load_val, vqav2_dir) == f"{path}: no questions (split 'val' would be empty)"


def test_missing_image_folder_and_file(vqav2_dir: Path) -> None:
    q, a, i = official(vqav2_dir, ("val2014",))
    assert one_line_error(vo.load_official, q, a, {"val": vqav2_dir / "nope"}, "x") == (
        f"{vqav2_dir / 'nope'}: image folder for split 'val' not found"
    )
    missing = {"val": vqav2_dir / "missing.json"}
    assert (
        one_line_error(vo.load_official, q, missing, i, "x")
        == f"{vqav2_dir / 'missing.json'}: annotations file not found"
    )
    assert "must name the same splits" in one_line_error(vo.load_official, q, a, {}, "x")


# ----------------------------------------------------------------------------------------------------
# Hub copies, through save_to_disk folders shaped like the chosen hub tables


def vqav2_table(vqav2_dir: Path, rename_answer: str | None = None):
    """A table in lmms-lab/VQAv2's column layout (answers as a list of dicts, image_id, Image)."""
    import datasets

    rows = [r for r in VQAV2 if r[0] == "val2014"]
    answers = [a["answers"] for a in vqav2_annotations("val2014")["annotations"]]
    if rename_answer:
        answers[0][0] = dict(answers[0][0], answer=rename_answer)
    features = datasets.Features(
        {
            "question_type": datasets.Value("string"),
            "multiple_choice_answer": datasets.Value("string"),
            "answers": datasets.List(
                {
                    "answer": datasets.Value("string"),
                    "answer_confidence": datasets.Value("string"),
                    "answer_id": datasets.Value("int64"),
                }
            ),
            "image_id": datasets.Value("int64"),
            "answer_type": datasets.Value("string"),
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "question_type": [r[4] for r in rows],
            "multiple_choice_answer": [r[6][0] for r in rows],
            "answers": answers,
            "image_id": [r[2] for r in rows],
            "answer_type": [r[5] for r in rows],
            "question_id": [r[1] for r in rows],
            "question": [r[3] for r in rows],
            "image": [Image.open(vqav2_dir / "val2014" / f"COCO_val2014_{r[2]:012d}.jpg") for r in rows],
        },
        features=features,
    )


def test_hub_vqav2_layout_from_save_to_disk(vqav2_dir: Path, tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "hub-vqav2"
    datasets.DatasetDict({"validation": vqav2_table(vqav2_dir)}).save_to_disk(str(folder))
    ds = vo.load_hub(str(folder), HUB_VQAV2["splits"], HUB_VQAV2["columns"], "vqav2-hub")
    assert ds.name == "vqav2-hub" and list(ds.splits) == ["val"] and ds.image_paths == {}
    files = load_val(vqav2_dir).rows("val")
    hub = ds.rows("val")
    assert hub == files  # same ids, image keys, questions, answers (by answer_id), types
    image = ds.image("val/42")
    assert tuple(image.shape) == (16, 24, 3)
    assert (image.int() - load_val(vqav2_dir).image("val/42").int()).abs().max() <= 2
    assert ds.image("val/42") is image
    assert "no image 'val/99'" in one_line_error(ds.image, "val/99")
    assert ds.version.startswith("hub:")
    same = vo.load_hub(str(folder), HUB_VQAV2["splits"], HUB_VQAV2["columns"], "vqav2-hub")
    assert same.version == ds.version
    other = tmp_path / "hub-vqav2-changed"
    datasets.DatasetDict({"validation": vqav2_table(vqav2_dir, rename_answer="fishing net")}).save_to_disk(str(other))
    changed = vo.load_hub(str(other), HUB_VQAV2["splits"], HUB_VQAV2["columns"], "vqav2-hub")
    assert changed.version != ds.version and changed.rows("val")[0].answers[0] == "fishing net"


def test_hub_okvqa_layout_single_table_keyed_by_question(vqav2_dir: Path, tmp_path: Path) -> None:
    import datasets

    png = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 6), (10, 20, 30, 0)).save(png)  # transparent: decoded on white
    table = datasets.Dataset.from_dict(
        {
            "question_id": ["420", "730"],
            "image": [str(vqav2_dir / "val2014" / "COCO_val2014_000000000042.jpg"), str(png)],
            "question": [r[3] for r in OKVQA],
            "answers": [[stem for stem, _ in r[5] for _ in range(2)] for r in OKVQA],
            "question_type": ["eight", "one"],
            "answer_type": ["other", "other"],
        },
        features=datasets.Features(
            {
                "question_id": datasets.Value("string"),
                "image": datasets.Image(),
                "question": datasets.Value("string"),
                "answers": datasets.List(datasets.Value("string")),
                "question_type": datasets.Value("string"),
                "answer_type": datasets.Value("string"),
            }
        ),
    )
    folder = tmp_path / "hub-okvqa"
    table.save_to_disk(str(folder))
    ds = vo.load_hub(str(folder), HUB_OKVQA["splits"], HUB_OKVQA["columns"], "okvqa-hub")
    first, second = ds.rows("val")
    assert (first.id, first.image, first.question_type, first.answer_type) == ("420", "val/q420", "eight", "other")
    assert first.answers == ("baseball",) * 8 + ("softball",) * 2
    assert second.image == "val/q730"
    assert ds.image("val/q730").unique().tolist() == [255]
    assert tuple(ds.image("val/q420").shape) == (16, 24, 3)


def test_hub_minimal_columns_and_errors(tmp_path: Path) -> None:
    import datasets

    png = tmp_path / "x.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(png)
    base = {
        "qid": [1, 2],
        "q": ["a?", "b?"],
        "ans": [["x"], ["y", "z"]],
        "img": [str(png), str(png)],
        "plain": ["p", "p"],
    }
    features = datasets.Features(
        {
            "qid": datasets.Value("int64"),
            "q": datasets.Value("string"),
            "ans": datasets.List(datasets.Value("string")),
            "img": datasets.Image(),
            "plain": datasets.Value("string"),
        }
    )
    folder = tmp_path / "t"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(base, features=features)}).save_to_disk(str(folder))
    cols = {"question_id": "qid", "question": "q", "answers": "ans", "image": "img"}
    ds = vo.load_hub(str(folder), {"val": "test"}, cols, "t")
    assert [(r.id, r.image, r.answers, r.answer_type, r.question_type) for r in ds.rows("val")] == [
        ("1", "val/q1", ("x",), "", ""),
        ("2", "val/q2", ("y", "z"), "", ""),
    ]
    assert ds.image("val/q2")[0, 0].tolist() == [1, 2, 3]

    assert "no split 'validation' for val (has test)" in one_line_error(
        vo.load_hub, str(folder), {"val": "validation"}, cols, "t"
    )
    assert "no column 'nope' for question_type" in one_line_error(
        vo.load_hub, str(folder), {"val": "test"}, {**cols, "question_type": "nope"}, "t"
    )
    plain = {**cols, "image": "plain"}
    assert "column 'plain' is Value, not Image" in one_line_error(vo.load_hub, str(folder), {"val": "test"}, plain, "t")
    no_answers = {"question_id": "qid", "question": "q", "image": "img"}
    assert "columns mapping lacks answers" in one_line_error(vo.load_hub, str(folder), {"val": "test"}, no_answers, "t")
    assert "not a saved datasets folder" in one_line_error(vo.load_hub, str(tmp_path), {"val": "test"}, cols, "t")

    dup = tmp_path / "dup"
    datasets.Dataset.from_dict({**base, "qid": [5, 5]}, features=features).save_to_disk(str(dup))
    message = one_line_error(vo.load_hub, str(dup), {"val": "x"}, cols, "t")
    assert "row 1 (question_id 5): duplicate question_id, also row 0" in message
    empty = tmp_path / "empty-answers"
    datasets.Dataset.from_dict({**base, "ans": [["x"], []]}, features=features).save_to_disk(str(empty))
    message = one_line_error(vo.load_hub, str(empty), {"val": "x"}, cols, "t")
    assert "row 1 (question_id 2): answers must be a non-empty list" in message


def test_hub_answer_forms() -> None:
    assert vo._answers(["a", "b"], "w") == ("a", "b")
    assert vo._answers([{"answer": "b", "answer_id": 2}, {"answer": "a", "answer_id": 1}], "w") == ("a", "b")
    assert vo._answers([{"answer": "b"}, {"answer": "a"}], "w") == ("b", "a")  # no ids: table order
    assert vo._answers({"answer": ["b", "a"], "answer_id": [2, 1]}, "w") == ("a", "b")  # Sequence({...}) column
    assert (
        one_line_error(vo._answers, [{"text": "a"}], "w")
        == "w: answers must be strings or objects with a string 'answer'"
    )
