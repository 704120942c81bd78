"""Frozen's naming protocol: episodes, texts, the exact-match metric, class folders and episode files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from harness.data.folders import load_class_folders, load_frozen_episodes
from harness.errors import HarnessError
from harness.kinds.naming import (
    _END,
    NONSENSE_NAMES,
    QUERY_TEXT,
    build_episodes,
    extract_name,
    induction_text,
    naming_accuracy,
    support_text,
)

# ---------------------------------------------------------------- episodes


def _classes(n_classes: int = 6, per_class: int = 6) -> dict[str, list[str]]:
    return {f"class_{c}": [f"class_{c}/{i}.jpg" for i in range(per_class)] for c in range(n_classes)}


def _build(classes=None, **overrides):
    kwargs = dict(ways=2, inner_shots=1, repeats=1, induction=False, open_ended=True, n_episodes=30, seed=0, task="t")
    kwargs.update(overrides)
    return build_episodes(_classes() if classes is None else classes, **kwargs)


def _class_of(key: str) -> str:
    return key.split("/")[0]


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_episodes_are_deterministic_and_depend_on_seed_and_task():
    assert _build() == _build()
    assert _build(seed=1) != _build()
    assert _build(task="other") != _build()
    assert [r.id for r in _build()] == [f"t-{i}" for i in range(30)]


def test_episodes_do_not_depend_on_dict_or_list_order():
    classes = _classes()
    shuffled = {name: list(reversed(keys)) for name, keys in reversed(list(classes.items()))}
    for kwargs in ({}, {"ways": 5, "inner_shots": 3, "repeats": 2}, {"open_ended": False, "induction": True}):
        assert _build(classes, **kwargs) == _build(shuffled, **kwargs)


@pytest.mark.parametrize("ways, inner_shots, repeats", [(2, 1, 1), (2, 3, 2), (5, 1, 3), (5, 5, 1), (3, 2, 2)])
def test_support_counts_and_interleaving(ways, inner_shots, repeats):
    rows = _build(ways=ways, inner_shots=inner_shots, repeats=repeats, n_episodes=20)
    orders = set()
    for row in rows:
        assert len(row.support) == ways * inner_shots * repeats
        block = row.support[: ways * inner_shots]
        assert row.support == block * repeats  # the whole support, repeated as a block
        counts = Counter(name for _, name in block)
        assert len(counts) == ways and set(counts.values()) == {inner_shots}
        assert len({key for key, _ in block}) == ways * inner_shots  # distinct support images
        for position in range(inner_shots):  # each shot position shows every class once
            chunk = block[position * ways : (position + 1) * ways]
            assert len({name for _, name in chunk}) == ways
            orders.add(tuple(_class_of(key) for key, _ in chunk))
        assert row.question == "" and row.answer_type == "naming" and row.question_type == f"{ways}-way"
    assert len(orders) > 1  # the class order is seeded, not fixed


def test_query_is_never_a_support_image_and_names_its_class():
    classes = _classes(n_classes=5, per_class=4)  # 3-shot: exactly one image per class left for queries
    for row in _build(classes, ways=5, inner_shots=3, n_episodes=60):
        assert row.image not in {key for key, _ in row.support}
        by_class = {_class_of(key): name for key, name in row.support}
        assert row.answers == (by_class[_class_of(row.image)],)


def test_open_ended_names_are_shuffled_nonsense_words():
    rows = _build(ways=5, n_episodes=40)
    seen = set()
    for row in rows:
        names = [name for _, name in row.support]
        assert set(names) <= set(NONSENSE_NAMES) and len(set(names)) == 5
        mapping = {_class_of(key): name for key, name in row.support}
        assert len(set(mapping.values())) == len(mapping)  # one name per class within the episode
        seen.add(tuple(sorted(mapping.items())))
    assert len(seen) > 1  # names are re-drawn per episode
    assert NONSENSE_NAMES[:2] == ("dax", "blicket") and len(set(NONSENSE_NAMES)) == len(NONSENSE_NAMES) >= 5


def test_real_names_use_the_class_name_with_spaces():
    classes = {"golden_retriever": [f"g/{i}" for i in range(3)], "house_finch": [f"h/{i}" for i in range(3)]}
    for row in _build(classes, open_ended=False, n_episodes=10):
        assert {name for _, name in row.support} == {"golden retriever", "house finch"}
        assert row.answers[0] == ("golden retriever" if row.image.startswith("g/") else "house finch")


def test_induction_text():
    assert induction_text(["dax", "blicket"]) == "Answer with dax or blicket."
    assert induction_text(["dax", "blicket", "slation", "perpo", "shously"]) == (
        "Answer with dax, blicket, slation, perpo or shously."
    )
    assert induction_text(["dax"]) == "Answer with dax."
    with pytest.raises(HarnessError):
        induction_text([])
    for row in _build(ways=5, induction=True, n_episodes=5):
        names = list(dict.fromkeys(name for _, name in row.support))
        assert row.induction == induction_text(names)
    assert all(row.induction == "" for row in _build(induction=False, n_episodes=5))


def test_fixed_texts():
    assert support_text("dax") == "This is a dax."
    assert support_text("eagle") == "This is a eagle."  # the protocol's fixed article
    assert QUERY_TEXT == "Question: What is this? Answer: This is a"


def test_query_pool_supplies_the_queries():
    classes = {c: [f"{c}/apple-{i}" for i in range(2)] for c in ("cat", "dog", "fish")}
    pool = {c: [f"{c}/google-{i}" for i in range(2)] for c in ("cat", "dog", "fish")}
    for row in _build(classes, query_pool=pool, inner_shots=2, n_episodes=20):  # 2 images suffice: no query needed
        assert "google" in row.image and all("apple" in key for key, _ in row.support)
        mapping = {_class_of(key): name for key, name in row.support}
        assert row.answers == (mapping[_class_of(row.image)],)
    with pytest.raises(HarnessError) as excinfo:
        _build(classes, query_pool={"cat": ["cat/g"], "dog": ["dog/g"]})
    assert "'fish'" in _one_line_error(excinfo)


def test_identical_image_query_is_one_of_its_own_support_images():
    classes = {c: [f"{c}/apple-{i}" for i in range(3)] for c in ("cat", "dog", "fish")}
    pool = {c: [f"{c}/google-{i}" for i in range(2)] for c in ("cat", "dog", "fish")}
    rows = _build(classes, query_pool=pool, inner_shots=3, n_episodes=40, query_from_support=True)
    for row in rows:  # 3 images a class: no image is left for a new query, and none is needed
        assert "apple" in row.image and row.image in {key for key, _ in row.support}
        mapping = {_class_of(key): name for key, name in row.support}
        assert row.answers == (mapping[_class_of(row.image)],)
    assert len({row.image.split("-")[-1] for row in rows}) > 1  # any of the support images, not always the first
    default = _build(classes, query_pool=pool, inner_shots=3, n_episodes=40)
    assert all(row.image not in {key for key, _ in row.support} for row in default)
    # Only the query differs: the classes, names and support of every episode are those of the default.
    assert [r.support for r in rows] == [r.support for r in default]


def test_query_option_reaches_the_episodes_and_the_label():
    from harness.config import TaskConfig
    from harness.data.types import Dataset
    from harness.kinds.base import with_options
    from harness.kinds.naming import Naming

    kind = Naming()
    task = TaskConfig(name="toy-open", version=1, kind="naming", source="toy", split="episodes", prompt="",
                      options={"episodes": 10})  # fmt: skip
    data = Dataset("toy", "1", {}, {}, classes=_classes(n_classes=3, per_class=2))
    same = kind.rows(with_options(task, {"query": "support"}, "t"), data, 0)
    assert all(row.image in {k for k, _ in row.support} for row in same)
    assert all(row.image not in {k for k, _ in row.support} for row in kind.rows(task, data, 0))
    settings = kind.settings(with_options(task, {"query": "support"}, "t"), data)
    assert settings["query"] == "support"
    assert kind.label("toy-open", {"cell_settings": settings}) == "toy-open 2-way identical-image"
    assert "query" not in kind.settings(task, data)  # the default records nothing: records as before the option
    assert kind.label("toy-open", {"cell_settings": kind.settings(task, data)}) == "toy-open 2-way"
    with pytest.raises(HarnessError) as excinfo:
        kind.rows(with_options(task, {"query": "same"}, "t"), data, 0)
    assert "query=same" in _one_line_error(excinfo) and "new or support" in str(excinfo.value)


@pytest.mark.parametrize(
    "classes, overrides, expected",
    [
        ({"a": ["1", "2"]}, {}, "need 2 classes"),
        ({"a": ["1", "2"], "b": ["3"]}, {}, "class 'b' has 1 image"),
        ({"a": ["1", "2", "9"], "b": ["3", "4", "5"]}, {"inner_shots": 3}, "class 'a' has 3 image"),
        (None, {"ways": 6}, "nonsense names"),
        (None, {"ways": 0}, "ways must be"),
        (None, {"repeats": 0}, "repeats must be"),
        ({"a_b": ["1", "2"], "a b": ["3", "4"]}, {"open_ended": False}, "same real name"),
    ],
)
def test_episode_errors_are_one_line(classes, overrides, expected):
    with pytest.raises(HarnessError) as excinfo:
        _build(classes, **overrides)
    assert expected in _one_line_error(excinfo)


def test_zero_episodes_is_empty():
    assert _build(n_episodes=0) == []


# ---------------------------------------------------------------- metric


@pytest.mark.parametrize(
    "generated, name, expected_name, correct",
    [
        ("dax.", "dax", "dax", 1.0),
        (" dax. This is a blicket.", "dax", "dax", 1.0),
        (" Dax\nfoo", "dax", "dax", 1.0),
        ("DAX", "Dax ", "dax", 1.0),
        ("blicket is", "blicket", "blicket is", 0.0),
        ("a dax.", "dax", "a dax", 0.0),
        ("blicket.", "dax", "blicket", 0.0),
        ("", "dax", "", 0.0),
        (".", "dax", "", 0.0),
        ("golden retriever.", "golden retriever", "golden retriever", 1.0),
        ("dax\r\nblicket", "dax", "dax", 1.0),
    ],
)
def test_extract_name_and_accuracy(generated, name, expected_name, correct):
    assert extract_name(generated) == expected_name
    assert naming_accuracy(generated, name) == correct


@given(st.text(), st.text())
def test_metric_never_raises(generated, name):
    extracted = extract_name(generated)
    assert isinstance(extracted, str) and "." not in extracted and "\n" not in extracted
    assert naming_accuracy(generated, name) in (0.0, 1.0)
    if name.strip() and not _END.search(name):  # a name with no period or line break round-trips
        assert naming_accuracy(f" {name}. more", name) == 1.0


def test_metric_tolerates_non_strings():
    assert extract_name(None) == ""  # type: ignore[arg-type]
    assert naming_accuracy("dax", None) == 0.0  # type: ignore[arg-type]


# ---------------------------------------------------------------- class folders


def _jpeg(path: Path, color=(200, 30, 30), size=(8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG")
    return path


def test_load_class_folders_reads_a_folder_per_class(tmp_path):
    root = tmp_path / "mini"
    for c in ("n01930112", "n02219486"):
        for i in (2, 0, 1):
            _jpeg(root / c / f"{c}_{i}.jpg")
    Image.new("RGB", (5, 5), (0, 0, 255)).save(root / "n02219486" / "extra.PNG")
    (root / "n02219486" / "notes.txt").write_text("not an image")
    (root / "n02219486" / ".hidden.jpg").write_bytes(b"")
    (root / "empty_class").mkdir()
    (root / "README.md").write_text("a file at the top level")
    d = load_class_folders(root, "mini")
    assert d.name == "mini" and d.splits == {}
    assert d.classes == {
        "n01930112": [f"n01930112/n01930112_{i}.jpg" for i in range(3)],
        "n02219486": ["n02219486/extra.PNG"] + [f"n02219486/n02219486_{i}.jpg" for i in range(3)],
    }
    assert set(d.image_paths) == {k for keys in d.classes.values() for k in keys}
    assert d.image("n01930112/n01930112_0.jpg").shape == (6, 8, 3)
    assert d.image("n02219486/extra.PNG").shape == (5, 5, 3)
    assert len(d.version) == 16 and load_class_folders(root, "mini").version == d.version
    _jpeg(root / "n01930112" / "n01930112_0.jpg", size=(40, 30))  # same names, new content
    assert load_class_folders(root, "mini").version != d.version

    rows = build_episodes(d.classes, ways=2, inner_shots=2, repeats=1, induction=True, open_ended=True,
                          n_episodes=4, seed=0, task="mini")  # fmt: skip
    assert all(d.image(row.image).shape[-1] == 3 for row in rows)


def test_load_class_folders_never_leaves_the_root(tmp_path):
    outside = tmp_path / "outside"
    _jpeg(outside / "secret.jpg")
    root = tmp_path / "root"
    _jpeg(root / "cat" / "0.jpg")
    try:
        (root / "linked_class").symlink_to(outside, target_is_directory=True)
        (root / "cat" / "1.jpg").symlink_to(outside / "secret.jpg")
    except OSError:
        pytest.skip("no symlinks here")
    d = load_class_folders(root, "r")
    assert d.classes == {"cat": ["cat/0.jpg"]}
    assert all(p.resolve().is_relative_to(root.resolve()) for p in d.image_paths.values())


def test_load_class_folders_errors_are_one_line(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "cls" / "a.txt").write_text("x")
    with pytest.raises(HarnessError) as excinfo:
        load_class_folders(tmp_path / "empty", "e")
    assert "no class folders with images" in _one_line_error(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        load_class_folders(tmp_path / "missing", "m")
    assert "is not a folder" in _one_line_error(excinfo)


# ---------------------------------------------------------------- Frozen's episode files


def _frozen(tmp_path: Path, task="open_ended_mi", shots=1, ways=2, episodes=None) -> Path:
    """A tiny release in the documented layout: flat folder, one JSON per configuration."""
    folder = tmp_path / task
    prefix = f"{task}_shots_{shots}_ways_{ways}"
    if episodes is None:
        names = list(NONSENSE_NAMES[:ways])
        episodes = []
        for x in range(3):
            entry = {}
            for i in range(1, shots * ways + 1):
                entry[f"image_{i}"] = f"{prefix}_id_{x}_image_{i}.jpg"
                entry[f"caption_{i}"] = f"This is a {names[(i - 1) % ways]}."
            entry["question"] = "Question: What is this? Answer:"
            entry["question_image"] = f"{prefix}_id_{x}_question.jpg"
            entry["answer"] = names[x % ways]
            episodes.append(entry)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in episodes:
        for field, value in entry.items():
            if (field.startswith("image_") or field == "question_image") and isinstance(value, str):
                if "/" not in value and not (folder / value).exists():
                    _jpeg(folder / value, color=(len(value) * 7 % 255, 90, 20))
    (folder / f"{prefix}_all_questions.json").write_text(json.dumps(episodes))
    return folder


def test_load_frozen_episodes_reads_the_released_layout(tmp_path):
    folder = _frozen(tmp_path, shots=3, ways=2)
    d, rows = load_frozen_episodes(folder, "miniimagenet-open")
    assert len(rows) == 3 and d.rows("test") == rows and d.rows("shots_3_ways_2") == rows
    row = rows[1]
    assert row.id == "miniimagenet-open-3shot-2way-1"
    assert row.image == "open_ended_mi_shots_3_ways_2_id_1_question.jpg"
    assert row.support[0] == ("open_ended_mi_shots_3_ways_2_id_1_image_1.jpg", "dax")
    assert [name for _, name in row.support] == ["dax", "blicket"] * 3
    assert row.answers == ("blicket",) and row.question == "Question: What is this? Answer:"
    assert row.answer_type == "naming" and row.question_type == "2-way" and row.induction == ""
    assert d.image(row.image).shape == (6, 8, 3) and d.image(row.support[5][0]).shape == (6, 8, 3)
    assert d.classes == {} and len(d.version) == 16

    _, with_induction = load_frozen_episodes(folder, "m", induction=True)
    assert with_induction[0].induction == "Answer with dax or blicket."


def test_load_frozen_episodes_reads_bare_names_and_sub_folders(tmp_path):
    episode = {"image_1": "a.jpg", "caption_1": "eagle", "image_2": "b.jpg", "caption_2": "This is an Ant",
               "question": "What is this?", "question_image": "q.jpg", "answer": "This is a ant."}  # fmt: skip
    _frozen(tmp_path / "release", task="real_name_mi", episodes=[episode])
    d, rows = load_frozen_episodes(tmp_path / "release", "real")
    assert rows[0].support == (("real_name_mi/a.jpg", "eagle"), ("real_name_mi/b.jpg", "Ant"))
    assert rows[0].answers == ("Ant",) and rows[0].image == "real_name_mi/q.jpg"
    assert set(d.splits) == {"test", "shots_1_ways_2"}


def _episode(**changes):
    entry = {"image_1": "a.jpg", "caption_1": "This is a dax.", "image_2": "b.jpg", "caption_2": "This is a blicket.",
             "question": "Q", "question_image": "q.jpg", "answer": "dax"}  # fmt: skip
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    "episodes, expected",
    [
        ([_episode(answer=None)], "episode 0: field answer missing"),
        ([_episode(question_image=None)], "field question_image missing"),
        ([_episode(question=None)], "field question missing"),
        ([_episode(answer="wug")], "field answer 'wug' is not a support name"),
        ([_episode(), _episode(caption_2=None)], "episode 1: field caption_2 missing"),
        ([_episode(image_3="c.jpg", caption_3="This is a dax.")], "3 support images"),
        ([_episode(image_4="c.jpg", caption_4="This is a dax.")], "field image_4 does not follow"),
        ([_episode(caption_2="This is a dax.")], "name 1 classes"),
        ([_episode(question_image="missing.jpg")], "field question_image: image file"),
        ([_episode(image_1="../outside.jpg")], "field image_1: image '../outside.jpg' is outside"),
        ([_episode(image_1=7)], "field image_1: expected an image file name"),
        ([_episode(caption_1="This is a dax. And more.")], "field caption_1: cannot read a name"),
        ([_episode(caption_1="")], "field caption_1: expected a non-empty string"),
        ([_episode(question=3)], "field question: expected a string"),
        (["not an object"], "episode 0: expected an object"),
        ({"image_1": "a.jpg"}, "expected a JSON list of episodes"),
        ([], "no episodes"),
    ],
)
def test_load_frozen_episodes_errors_name_file_and_field(tmp_path, episodes, expected):
    _jpeg(tmp_path / "outside.jpg")
    folder = tmp_path / "open_ended_mi"
    for image in ("a.jpg", "b.jpg", "c.jpg", "q.jpg"):
        _jpeg(folder / image)
    (folder / "open_ended_mi_shots_1_ways_2_all_questions.json").write_text(json.dumps(episodes))
    with pytest.raises(HarnessError) as excinfo:
        load_frozen_episodes(folder, "m")
    message = _one_line_error(excinfo)
    assert expected in message and "open_ended_mi_shots_1_ways_2_all_questions.json" in message


def test_load_frozen_episodes_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError) as excinfo:
        load_frozen_episodes(tmp_path / "empty", "m")
    assert "no Frozen episode files" in _one_line_error(excinfo)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x_shots_1_ways_2_all_questions.json").write_text("{not json")
    with pytest.raises(HarnessError) as excinfo:
        load_frozen_episodes(tmp_path / "bad", "m")
    assert "not valid JSON" in _one_line_error(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        load_frozen_episodes(tmp_path / "nowhere", "m")
    assert "is not a folder" in _one_line_error(excinfo)
