"""COCO on Karpathy's split: a six-image dataset_coco.json in Karpathy's exact layout, real JPEGs,
an official captions_val2014.json, every validation error, the env loader and the hub copy."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from PIL import Image

from harness import registry
from harness.data import coco
from harness.errors import HarnessError

# (cocoid, Karpathy split, folder, colour, size): two train, one restval, one val, two test images.
IMAGES = [
    (57870, "train", "train2014", (200, 30, 30), (24, 16)),
    (384029, "train", "train2014", (30, 200, 30), (20, 20)),
    (203564, "restval", "val2014", (30, 30, 200), (16, 24)),
    (391895, "val", "val2014", (200, 200, 30), (32, 16)),
    (522418, "test", "val2014", (30, 200, 200), (16, 16)),
    (184613, "test", "val2014", (200, 30, 200), (28, 20)),
]


# The hub mapping is data in tasks/coco-hub.yaml; the local table below has exactly its shape.
HUB_COCO_KARPATHY = registry.TASKS.get("coco-hub").hub


def karpathy_json() -> dict:
    images, sentid = [], 0
    for imgid, (cocoid, split, folder, _, _) in enumerate(IMAGES):
        sentences = []
        for n in range(5):
            raw = f"Karpathy sentence {n} for image {cocoid}."
            tokens = raw.lower().rstrip(".").split()
            sentences.append({"tokens": tokens, "raw": raw, "imgid": imgid, "sentid": sentid + n})
        images.append(
            {
                "filepath": folder,
                "sentids": [s["sentid"] for s in sentences],
                "filename": f"COCO_{folder}_{cocoid:012d}.jpg",
                "imgid": imgid,
                "split": split,
                "sentences": sentences,
                "cocoid": cocoid,
            }
        )
        sentid += 5
    return {"images": images, "dataset": "coco"}


def official_val_json() -> dict:
    val = [(c, f) for c, _, f, _, _ in IMAGES if f == "val2014"]
    images = [
        {"license": 1, "file_name": f"COCO_val2014_{c:012d}.jpg", "height": 480, "width": 640, "id": c} for c, _ in val
    ]
    annotations, ann_id = [], 1000
    for cocoid, _ in val:
        for n in range(5 if cocoid != 391895 else 6):  # some official images have more than 5
            annotations.append({"image_id": cocoid, "id": ann_id, "caption": f"Official caption {n} of {cocoid}"})
            ann_id += 1
    return {"info": {"year": 2014}, "images": images, "licenses": [], "annotations": annotations}


def write_json(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj, indent=1))
    return path


@pytest.fixture
def coco_dir(tmp_path) -> Path:
    root = tmp_path / "coco"
    for cocoid, _, folder, colour, size in IMAGES:
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(root / folder / f"COCO_{folder}_{cocoid:012d}.jpg", quality=95)
    (root / "annotations").mkdir()
    write_json(root / "dataset_coco.json", karpathy_json())
    write_json(root / "annotations" / "captions_val2014.json", official_val_json())
    return root


def test_splits_merge_restval_into_train_with_karpathy_references(coco_dir):
    d = coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir)
    assert d.name == "coco" and d.version.startswith("karpathy:")
    assert [r.id for r in d.rows("train")] == ["57870", "384029", "203564"]
    assert [r.id for r in d.rows("val")] == ["391895"]
    assert [r.id for r in d.rows("test")] == ["522418", "184613"]
    row = d.rows("test")[0]
    assert row.image == "val2014/COCO_val2014_000000522418.jpg" and row.answer_type == "caption"
    assert row.answers == tuple(f"Karpathy sentence {n} for image 522418." for n in range(5))
    assert d.image_paths[row.image] == coco_dir / "val2014" / "COCO_val2014_000000522418.jpg"
    assert d.rows("train")[2].image == "val2014/COCO_val2014_000000203564.jpg"


def test_official_caption_json_replaces_references(coco_dir):
    official = coco_dir / "annotations" / "captions_val2014.json"
    d = coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir, [official])
    val = d.rows("val")[0]
    assert val.answers == tuple(f"Official caption {n} of 391895" for n in range(6))
    assert d.rows("test")[1].answers == tuple(f"Official caption {n} of 184613" for n in range(5))
    train = {r.id: r for r in d.rows("train")}
    assert train["203564"].answers[0] == "Official caption 0 of 203564"  # restval, in val2014
    assert train["57870"].answers[0] == "Karpathy sentence 0 for image 57870."  # not covered: Karpathy's


def test_training_captions_are_the_karpathy_sentences(coco_dir):
    official = coco_dir / "annotations" / "captions_val2014.json"
    d = coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir, [official])
    assert {s: len(c) for s, c in d.captions.items()} == {"train": 15, "val": 5, "test": 10}
    first = d.captions["train"][0]
    assert first.image == "train2014/COCO_train2014_000000057870.jpg"
    assert first.text == "Karpathy sentence 0 for image 57870."
    assert {c.image for c in d.captions["train"]} == {r.image for r in d.rows("train")}


def test_images_decode_to_uint8_rgb_and_are_cached(coco_dir):
    d = coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir)
    for row, (_, _, _, colour, (w, h)) in zip(d.rows("train") + d.rows("val") + d.rows("test"), IMAGES):
        px = d.image(row.image)
        assert px.shape == (h, w, 3) and str(px.dtype) == "torch.uint8"
        assert all(abs(int(px[h // 2, w // 2, c]) - colour[c]) < 12 for c in range(3))
    key = d.rows("val")[0].image
    assert d.image(key) is d.image(key)
    with pytest.raises(HarnessError, match="no image"):
        d.image("val2014/nope.jpg")


def test_missing_image_file_is_a_one_line_error(coco_dir):
    d = coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir)
    key = d.rows("test")[0].image
    (coco_dir / key).unlink()
    with pytest.raises(HarnessError, match="image file not found") as err:
        d.image(key)
    assert "\n" not in str(err.value)


def test_version_follows_the_bytes_of_the_files_read(coco_dir):
    split_file = coco_dir / "dataset_coco.json"
    official = coco_dir / "annotations" / "captions_val2014.json"
    base = coco.load_karpathy(split_file, coco_dir).version
    assert coco.load_karpathy(split_file, coco_dir).version == base
    with_official = coco.load_karpathy(split_file, coco_dir, [official]).version
    assert with_official != base
    obj = karpathy_json()
    obj["images"][0]["sentences"][0]["raw"] = "An edited sentence."
    write_json(split_file, obj)
    assert coco.load_karpathy(split_file, coco_dir).version not in (base, with_official)


def _edit(mutate):
    obj = karpathy_json()
    mutate(obj)
    return obj


def _del(d: dict, key: str) -> None:
    del d[key]


def _duplicate(obj: dict) -> None:
    twin = copy.deepcopy(obj["images"][4])
    twin["split"] = "val"
    obj["images"].append(twin)


KARPATHY_ERRORS = [
    ("no images key", lambda o: _del(o, "images"), r"dataset_coco\.json: top level: missing key 'images'"),
    ("no cocoid", lambda o: _del(o["images"][2], "cocoid"), r"images\[2\]: missing key 'cocoid'"),
    (
        "no filename",
        lambda o: _del(o["images"][1], "filename"),
        r"images\[1\] \(cocoid 384029\): missing key 'filename'",
    ),
    ("no sentences", lambda o: _del(o["images"][3], "sentences"), r"\(cocoid 391895\): missing key 'sentences'"),
    (
        "no raw",
        lambda o: _del(o["images"][0]["sentences"][2], "raw"),
        r"\(cocoid 57870\) sentences\[2\]: missing key 'raw'",
    ),
    ("string cocoid", lambda o: o["images"][0].update(cocoid="57870"), r"images\[0\]: 'cocoid' must be int, got str"),
    ("unknown split", lambda o: o["images"][5].update(split="testing"), r"\(cocoid 184613\): unknown split 'testing'"),
    ("duplicate cocoid", _duplicate, r"images\[6\] \(cocoid 522418\): duplicate cocoid, also images\[4\]"),
    ("empty sentences", lambda o: o["images"][4].update(sentences=[]), r"\(cocoid 522418\): image has no sentences"),
    ("flickr file", lambda o: o.update(dataset="flickr30k"), r"'dataset' is 'flickr30k', expected 'coco'"),
]


@pytest.mark.parametrize("case, mutate, message", KARPATHY_ERRORS, ids=[c[0] for c in KARPATHY_ERRORS])
def test_karpathy_file_errors_are_one_line(coco_dir, case, mutate, message):
    split_file = write_json(coco_dir / "dataset_coco.json", _edit(mutate))
    with pytest.raises(HarnessError, match=message) as err:
        coco.load_karpathy(split_file, coco_dir)
    assert "\n" not in str(err.value) and str(split_file) in str(err.value)


def test_malformed_json_names_the_line(coco_dir):
    split_file = coco_dir / "dataset_coco.json"
    split_file.write_text('{\n "dataset": "coco",\n "images": [\n  {"cocoid": 1,}\n ]\n}\n')
    with pytest.raises(HarnessError, match=r"dataset_coco\.json: malformed JSON at line 4") as err:
        coco.load_karpathy(split_file, coco_dir)
    assert "\n" not in str(err.value)


def test_malformed_official_json_names_the_file(coco_dir):
    official = coco_dir / "annotations" / "captions_val2014.json"
    official.write_text('{"annotations": [\n{"image_id": 1, "caption": "x"}\n')
    with pytest.raises(HarnessError, match=r"captions_val2014\.json: malformed JSON at line 3"):
        coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir, [official])


def test_eval_image_missing_from_official_json(coco_dir):
    official_obj = official_val_json()
    official_obj["annotations"] = [a for a in official_obj["annotations"] if a["image_id"] != 184613]
    official = write_json(coco_dir / "annotations" / "captions_val2014.json", official_obj)
    with pytest.raises(HarnessError, match=r"\(cocoid 184613\): test image missing from the COCO caption files") as err:
        coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir, [official])
    assert "captions_val2014.json" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "annotations, message",
    [
        (None, r"top level: missing key 'annotations'"),
        ([{"id": 1, "caption": "x"}], r"annotations\[0\]: missing key 'image_id'"),
        ([{"image_id": 5, "id": 1}], r"annotations\[0\] \(image_id 5\): missing key 'caption'"),
    ],
)
def test_official_json_field_errors(coco_dir, annotations, message):
    obj = {"images": []} if annotations is None else {"images": [], "annotations": annotations}
    official = write_json(coco_dir / "annotations" / "captions_val2014.json", obj)
    with pytest.raises(HarnessError, match=message) as err:
        coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir, [official])
    assert "captions_val2014.json" in str(err.value)


def test_missing_files_and_folders(coco_dir, tmp_path):
    with pytest.raises(HarnessError, match="COCO image folder not found"):
        coco.load_karpathy(coco_dir / "dataset_coco.json", tmp_path / "nowhere")
    with pytest.raises(HarnessError, match="Karpathy split file not found"):
        coco.load_karpathy(coco_dir / "missing.json", coco_dir)
    with pytest.raises(HarnessError, match="COCO caption file not found"):
        coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir, [coco_dir / "captions_train2014.json"])
    for f in (coco_dir / "train2014").iterdir():
        f.unlink()
    (coco_dir / "train2014").rmdir()
    with pytest.raises(
        HarnessError, match=r"train2014: image folder 'train2014' named in .*dataset_coco\.json not found"
    ):
        coco.load_karpathy(coco_dir / "dataset_coco.json", coco_dir)


def test_env_loader(coco_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(coco.ENV_DIR, raising=False)
    monkeypatch.delenv(coco.ENV_KARPATHY, raising=False)
    with pytest.raises(
        HarnessError, match="needs HARNESS_COCO_DIR: set it to the COCO folder holding train2014/"
    ) as err:
        coco.load_coco_from_env()
    assert "\n" not in str(err.value)

    monkeypatch.setenv(coco.ENV_DIR, str(coco_dir))
    d = coco.load_coco_from_env()  # default Karpathy file, official captions picked up from annotations/
    assert d.rows("val")[0].answers[0] == "Official caption 0 of 391895"

    moved = tmp_path / "karpathy.json"
    (coco_dir / "dataset_coco.json").rename(moved)
    with pytest.raises(HarnessError, match="set HARNESS_KARPATHY_FILE to dataset_coco.json"):
        coco.load_coco_from_env()
    monkeypatch.setenv(coco.ENV_KARPATHY, str(moved))
    assert len(coco.load_coco_from_env().rows("test")) == 2


# --- hub copy -------------------------------------------------------------------------------------


@pytest.fixture
def hub_folder(tmp_path) -> Path:
    import datasets

    def table(entries):
        paths = []
        for cocoid, colour, size in entries:
            path = tmp_path / f"{cocoid}.png"
            Image.new("RGBA", size, colour + (255,)).save(path)
            paths.append(str(path))
        return datasets.Dataset.from_dict(
            {
                "cocoid": [c for c, _, _ in entries],
                "image": paths,
                "sentences_raw": [[f"caption {n} of {c}" for n in range(5)] for c, _, _ in entries],
                "filename": [f"COCO_val2014_{c:012d}.jpg" for c, _, _ in entries],
            },
            features=datasets.Features(
                {
                    "cocoid": datasets.Value("int32"),
                    "image": datasets.Image(),
                    "sentences_raw": datasets.List(datasets.Value("string")),
                    "filename": datasets.Value("string"),
                }
            ),
        )

    folder = tmp_path / "hub-copy"
    datasets.DatasetDict(
        {
            "test": table([(522418, (30, 200, 200), (16, 12)), (184613, (200, 30, 200), (10, 10))]),
            "validation": table([(391895, (200, 200, 30), (8, 6))]),
        }
    ).save_to_disk(str(folder))
    for png in tmp_path.glob("*.png"):  # the saved folder must carry the image bytes itself
        png.unlink()
    return folder


def test_hub_copy_from_a_saved_folder(hub_folder):
    d = coco.load_hub(str(hub_folder), {"test": "test", "val": "validation"}, HUB_COCO_KARPATHY["columns"])
    assert d.name == "coco-hub" and d.version.startswith("hub:") and not d.image_paths
    assert [r.id for r in d.rows("test")] == ["522418", "184613"] and [r.id for r in d.rows("val")] == ["391895"]
    row = d.rows("test")[0]
    assert row.image == "test/522418" and row.answer_type == "caption"
    assert row.answers == tuple(f"caption {n} of 522418" for n in range(5))
    assert len(d.captions["test"]) == 10 and d.captions["val"][0].text == "caption 0 of 391895"
    px = d.image(row.image)
    assert px.shape == (12, 16, 3) and str(px.dtype) == "torch.uint8" and px[5, 5].tolist() == [30, 200, 200]
    assert d.image(row.image) is px and d.image("val/391895").shape == (6, 8, 3)
    with pytest.raises(HarnessError, match="no image 'test/1'"):
        d.image("test/1")
    again = coco.load_hub(str(hub_folder), {"test": "test", "val": "validation"}, HUB_COCO_KARPATHY["columns"])
    assert again.version == d.version
    only_test = coco.load_hub(str(hub_folder), {"test": "test"}, HUB_COCO_KARPATHY["columns"])
    assert only_test.version != d.version and list(only_test.splits) == ["test"]


def test_hub_copy_errors(hub_folder, tmp_path):
    cols = dict(HUB_COCO_KARPATHY["columns"])
    with pytest.raises(HarnessError, match=r"no split 'train' for train \(has test, validation\)"):
        coco.load_hub(str(hub_folder), {"train": "train"}, cols)
    with pytest.raises(HarnessError, match=r"no column 'captions' \(has cocoid, image, sentences_raw, filename\)"):
        coco.load_hub(str(hub_folder), {"test": "test"}, {**cols, "references": "captions"})
    with pytest.raises(HarnessError, match="column 'filename' is Value, not Image"):
        coco.load_hub(str(hub_folder), {"test": "test"}, {**cols, "image": "filename"})
    with pytest.raises(HarnessError, match="'filename' must be a list of strings"):
        coco.load_hub(str(hub_folder), {"test": "test"}, {**cols, "references": "filename"})
    with pytest.raises(HarnessError, match="columns mapping lacks references"):
        coco.load_hub(str(hub_folder), {"test": "test"}, {"id": "cocoid", "image": "image"})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HarnessError, match="not a saved datasets folder") as err:
        coco.load_hub(str(empty), {"test": "test"}, cols)
    assert "\n" not in str(err.value)


def test_hub_id_unreachable_offline_is_one_line():
    with pytest.raises(HarnessError, match=r"hub dataset nobody/no-such-coco split 'test': cannot load") as err:
        coco.load_hub("nobody/no-such-coco", {"test": "test"}, HUB_COCO_KARPATHY["columns"])
    assert "\n" not in str(err.value)


def test_hub_constant_is_loadable_by_keyword():
    assert set(HUB_COCO_KARPATHY) == {"dataset_id", "splits", "columns"}
    assert set(HUB_COCO_KARPATHY["columns"]) == {"id", "image", "references"}
