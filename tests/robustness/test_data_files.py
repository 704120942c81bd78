"""Data files as untrusted input: paths that try to leave the dataset root, JSON that is malformed or
of the wrong shape, broken images inside the official layouts, and empty splits; one line each,
naming the file and the field or id. (Missing keys, pairing of questions and annotations, and
duplicate ids of every loader are tested with the loaders in tests/unit.)"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from harness.config import TaskConfig, from_mapping
from harness.data import built, coco
from harness.data import vqa_official as vo
from harness.data.files import safe_join
from harness.data.folders import load_class_folders, load_frozen_episodes
from harness.errors import BadImage, HarnessError
from harness.evaluation import tasks
from tests.robustness.conftest import one_line
from tests.unit.test_coco_data import karpathy_json, write_json
from tests.unit.test_naming import _frozen, _jpeg
from tests.unit.test_vqa_official import _edit, load_val

ESCAPES = ["../../etc/passwd", "/etc/passwd", "..", "a/../../b.jpg", "..\\..\\etc\\passwd", "C:/Windows/x.jpg"]


# ----------------------------------------------------------------------------------------------------
# The one path check


@pytest.mark.parametrize("value", ESCAPES + ["", "   ", "a\x00b.jpg", 7, None])
def test_safe_join_refuses_paths_that_leave_the_root(tmp_path, value):
    with pytest.raises(HarnessError) as excinfo:
        safe_join(tmp_path, value, "f.json: images[3]: 'file_name'")
    assert one_line(excinfo).startswith("f.json: images[3]: 'file_name': ")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a.jpg", "a.jpg"),
        ("sub/a.jpg", "sub/a.jpg"),
        ("sub/../a.jpg", "a.jpg"),
        ("./a.jpg", "a.jpg"),
        ("a..b.jpg", "a..b.jpg"),
    ],
)
def test_safe_join_allows_paths_that_stay_inside(tmp_path, value, expected):
    assert safe_join(tmp_path, value, "w") == tmp_path / expected


def test_safe_join_follows_symlinks_only_when_asked_not_to(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "root").mkdir()
    try:
        (tmp_path / "root" / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    except OSError:
        pytest.skip("no symlinks here")
    root = tmp_path / "root"
    assert safe_join(root, "link/x.jpg", "w") == root / "link" / "x.jpg"  # an owner's link is followed
    with pytest.raises(HarnessError, match="is outside .* \\(through a symlink\\)"):
        safe_join(root, "link/x.jpg", "w", resolve=True)


# ----------------------------------------------------------------------------------------------------
# VQAv2 / OK-VQA official files


@pytest.mark.parametrize("subtype", ["../../../../etc", "a/../../b", "val2014/../../.."])
def test_vqa_data_subtype_cannot_lead_out_of_the_image_folder(vqav2_dir, subtype):
    path = _edit(vqav2_dir, "questions", lambda o: o.update(data_subtype=subtype + "/x"))
    with pytest.raises(HarnessError) as excinfo:
        load_val(vqav2_dir)
    message = one_line(excinfo)
    assert message.startswith(f"{path}: top level: 'data_subtype': image ") and "is outside" in message


@pytest.mark.parametrize(
    "which, change, expected",
    [
        (
            "questions",
            lambda o: o["questions"].__setitem__(0, "What?"),
            "questions[0]: expected a JSON object, got str",
        ),
        ("questions", lambda o: o["questions"][1].update(question_id=True), "questions[1]: 'question_id' must be int"),
        ("questions", lambda o: o["questions"][1].update(question_id=4.5), "'question_id' must be int, got float"),
        ("questions", lambda o: o["questions"][1].update(question=None), "'question' must be str, got NoneType"),
        ("questions", lambda o: o.update(questions={"a": 1}), "top level: 'questions' must be list, got dict"),
        ("annotations", lambda o: o["annotations"][0].update(answers="net"), "'answers' must be list, got str"),
        ("annotations", lambda o: o["annotations"][0]["answers"].__setitem__(2, "net"), "answers[2]: expected a JSON"),
        ("annotations", lambda o: o["annotations"][0]["answers"][3].update(answer=5), "'answer' must be str, got int"),
    ],
)
def test_vqa_fields_of_the_wrong_shape_name_file_and_place(vqav2_dir, which, change, expected):
    path = _edit(vqav2_dir, which, change)
    with pytest.raises(HarnessError) as excinfo:
        load_val(vqav2_dir)
    message = one_line(excinfo)
    assert message.startswith(f"{path}: ") and expected in message, message


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "malformed JSON at line 1 column 1"),
        (b'{"questions": [', "malformed JSON at line 1"),
        (b"[1, 2]", "top level: expected a JSON object, got list"),
        (b'{"data_subtype": "val2014", "questions": [{"question_id": 1, \xff}]}', "is not UTF-8 text"),
    ],
)
def test_vqa_truncated_or_non_json_question_file(vqav2_dir, content, expected):
    path = vqav2_dir / "v2_OpenEnded_mscoco_val2014_questions.json"
    path.write_bytes(content)
    with pytest.raises(HarnessError) as excinfo:
        load_val(vqav2_dir)
    message = one_line(excinfo)
    assert message.startswith(f"{path}: ") and expected in message, message


def test_vqa_questions_file_that_is_a_folder(vqav2_dir):
    path = vqav2_dir / "v2_OpenEnded_mscoco_val2014_questions.json"
    path.unlink()
    path.mkdir()
    with pytest.raises(HarnessError) as excinfo:
        load_val(vqav2_dir)
    assert one_line(excinfo) == f"{path}: questions file is a folder, expected a JSON file"


@pytest.mark.parametrize("content", [b"", b"<html>not found</html>", b"\xff\xd8\xff\xe0\x00\x10JFIF"])
def test_vqa_unreadable_image_is_a_bad_image_naming_the_file(vqav2_dir, content):
    image = vqav2_dir / "val2014" / "COCO_val2014_000000000073.jpg"
    image.write_bytes(content)
    dataset = load_val(vqav2_dir)  # images are not read at load
    assert dataset.image("val/42").shape == (16, 24, 3)
    with pytest.raises(BadImage) as excinfo:
        dataset.image("val/73")
    assert one_line(excinfo).startswith(f"{image}: cannot decode image (")
    assert excinfo.value.source == str(image)


def test_vqa_official_loader_accepts_any_unicode_in_questions_and_answers(vqav2_dir):
    def exotic(o):
        o["annotations"][0]["answers"][0]["answer"] = ""
        o["annotations"][0]["answers"][1]["answer"] = "\u00e9t\u00e9 \U0001f600 \u200b\u0301 \n\t"

    _edit(vqav2_dir, "annotations", exotic)
    _edit(
        vqav2_dir,
        "questions",
        lambda o: o["questions"][0].update(question="\u0645\u0627 \u0647\u0630\u0627\u061f \x00"),
    )
    rows = load_val(vqav2_dir).rows("val")
    assert rows[0].answers[0] == "" and "\U0001f600" in rows[0].answers[1] and rows[0].question.endswith("\x00")


# ----------------------------------------------------------------------------------------------------
# COCO (Karpathy split file + official captions)


@pytest.mark.parametrize("value", ESCAPES)
@pytest.mark.parametrize("field", ["filepath", "filename"])
def test_coco_file_names_cannot_leave_the_image_root(coco_dir, field, value):
    obj = karpathy_json()
    obj["images"][3][field] = value
    split_file = write_json(coco_dir / "dataset_coco.json", obj)
    with pytest.raises(HarnessError) as excinfo:
        coco.load_karpathy(split_file, coco_dir)
    message = one_line(excinfo)
    assert message.startswith(f"{split_file}: images[3] (cocoid 391895): '{field}': ") and "outside" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda o: o["images"].__setitem__(1, "COCO_x.jpg"), "images[1]: expected a JSON object, got str"),
        (lambda o: o["images"][0]["sentences"].__setitem__(1, "a dog"), "sentences[1]: expected a JSON object"),
        (lambda o: o["images"][0]["sentences"][1].update(raw=["a", "dog"]), "sentences[1]: 'raw' must be str"),
        (lambda o: o["images"][2].update(split=None), "(cocoid 203564): 'split' must be str, got NoneType"),
        (lambda o: o.update(images={}), "top level: 'images' must be list, got dict"),
    ],
)
def test_coco_fields_of_the_wrong_shape(coco_dir, change, expected):
    obj = karpathy_json()
    change(obj)
    split_file = write_json(coco_dir / "dataset_coco.json", obj)
    with pytest.raises(HarnessError) as excinfo:
        coco.load_karpathy(split_file, coco_dir)
    message = one_line(excinfo)
    assert message.startswith(f"{split_file}: ") and expected in message, message


def test_coco_truncated_split_file(coco_dir):
    split_file = coco_dir / "dataset_coco.json"
    split_file.write_text(split_file.read_text()[:300])
    with pytest.raises(HarnessError) as excinfo:
        coco.load_karpathy(split_file, coco_dir)
    assert one_line(excinfo).startswith(f"{split_file}: malformed JSON at line")


def test_coco_empty_split_is_an_error_of_the_task(coco_dir):
    obj = karpathy_json()
    obj["images"] = [image for image in obj["images"] if image["split"] != "test"]
    dataset = coco.load_karpathy(write_json(coco_dir / "dataset_coco.json", obj), coco_dir)
    task = from_mapping(
        TaskConfig, {"name": "c", "version": 1, "kind": "caption", "source": "coco", "split": "test"}, "c"
    )
    with pytest.raises(HarnessError) as excinfo:
        tasks.rows(task, dataset)
    assert one_line(excinfo) == "task c: split 'test' of coco is empty"


def test_coco_grayscale_and_cmyk_images_load_as_rgb(coco_dir):
    folder = coco_dir / "val2014"
    Image.new("L", (10, 8), 90).save(folder / "COCO_val2014_000000391895.jpg")
    Image.new("CMYK", (10, 8), (0, 255, 255, 0)).save(folder / "COCO_val2014_000000522418.jpg")
    dataset = coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir)
    assert dataset.image("val2014/COCO_val2014_000000391895.jpg")[0, 0].tolist() == [90, 90, 90]
    red = dataset.image("val2014/COCO_val2014_000000522418.jpg")[0, 0].tolist()
    assert red[0] > 250 and red[1] < 5 and red[2] < 5


# ----------------------------------------------------------------------------------------------------
# Folder datasets: class folders and Frozen's episode files


def test_class_folders_with_broken_images_fail_on_use_naming_the_file(tmp_path):
    root = tmp_path / "mini"
    _jpeg(root / "cat" / "good.jpg")
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog").mkdir()
    (root / "dog" / "notes.jpg").write_text("not an image")
    dataset = load_class_folders(root, "mini")
    assert dataset.classes == {"cat": ["cat/empty.jpg", "cat/good.jpg"], "dog": ["dog/notes.jpg"]}
    assert dataset.image("cat/good.jpg").shape == (6, 8, 3)
    for key, reason in (("cat/empty.jpg", "empty file"), ("dog/notes.jpg", "not an image in a known format")):
        with pytest.raises(BadImage) as excinfo:
            dataset.image(key)
        assert one_line(excinfo).startswith(f"{root / key}: cannot decode image ({reason}")


@pytest.mark.parametrize("value", ESCAPES)
@pytest.mark.parametrize("field", ["image_1", "question_image"])
def test_episode_image_names_cannot_leave_the_release_folder(tmp_path, field, value):
    episode = {"image_1": "a.jpg", "caption_1": "This is a dax.", "image_2": "b.jpg", "caption_2": "This is a blicket.",
               "question": "Q", "question_image": "q.jpg", "answer": "dax"}  # fmt: skip
    folder = _frozen(tmp_path, episodes=[{**episode, field: value}])
    with pytest.raises(HarnessError) as excinfo:
        load_frozen_episodes(folder, "m")
    message = one_line(excinfo)
    assert "open_ended_mi_shots_1_ways_2_all_questions.json: episode 0, field " + field in message, message


def test_episode_image_symlinked_out_of_the_release_is_refused(tmp_path):
    _jpeg(tmp_path / "secret.jpg")
    folder = _frozen(tmp_path)
    target = folder / "open_ended_mi_shots_1_ways_2_id_0_question.jpg"
    target.unlink()
    try:
        os.symlink(tmp_path / "secret.jpg", target)
    except OSError:
        pytest.skip("no symlinks here")
    with pytest.raises(HarnessError) as excinfo:
        load_frozen_episodes(folder, "m")
    assert "field question_image: image" in one_line(excinfo) and "through a symlink" in one_line(excinfo)


# ----------------------------------------------------------------------------------------------------
# Offline builds: a manifest naming files outside its folder


@pytest.mark.parametrize("rel", ["../../etc/passwd", "/etc/passwd"])
def test_offline_manifest_cannot_name_files_outside_the_build(tmp_path, rel):
    folder = tmp_path / "emoji"
    folder.mkdir()
    manifest = {"format": built.FORMAT, "files": {rel: "0" * 64}, "version": "v", "options": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HarnessError) as excinfo:
        built.valid_manifest(folder, "emoji")
    assert one_line(excinfo).startswith(f"{folder / 'manifest.json'}: files: built file ")


@pytest.mark.parametrize("files", [["table/data.arrow"], "x", {"a": "b"}])
def test_offline_manifest_of_the_wrong_shape(tmp_path, files):
    folder = tmp_path / "emoji"
    folder.mkdir()
    manifest = {"format": built.FORMAT, "files": files, "version": "v", "options": {}}
    if isinstance(files, dict):
        manifest = {**manifest, "options": None}
    (folder / "manifest.json").write_text(json.dumps(copy.deepcopy(manifest)))
    with pytest.raises(HarnessError) as excinfo:
        built.valid_manifest(folder, "emoji")
    assert "manifest.json: 'files', 'version' or 'options' malformed" in one_line(excinfo)


def test_hub_official_layout_unaffected(vqav2_dir):
    """The path check changes nothing for well-formed files."""
    dataset = vo.load_official(*[{"val": p} for p in (
        vqav2_dir / "v2_OpenEnded_mscoco_val2014_questions.json",
        vqav2_dir / "v2_mscoco_val2014_annotations.json",
        vqav2_dir / "val2014",
    )], "vqav2")  # fmt: skip
    assert dataset.image_paths["val/42"] == vqav2_dir / "val2014" / "COCO_val2014_000000000042.jpg"
    assert Path(dataset.image_paths["val/73"]).is_file()
