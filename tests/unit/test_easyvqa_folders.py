"""easyvqa-folders: the easy-vqa test images built into class folders from the installed package, read back by
the class-folder loader; class-folder descriptions for --images caption; naming episodes at 1, 3 and 5 inner shots.

The whole build (880 images, 24 classes) takes about a second, so the module builds it once for real."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from harness import conditions
from harness.cli.main import main
from harness.data import easyvqa_folders
from harness.data.easyvqa import attributes
from harness.data.folders import load_class_folders
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.kinds.base import kind_of

easy_vqa = pytest.importorskip("easy_vqa")
NAME = "easyvqa-folders"


@pytest.fixture(scope="module")
def built(module_home: Path) -> Path:
    return easyvqa_folders.build()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def _package_classes() -> dict[int, str]:
    """image id -> "<colour>_<shape>" from the test questions, for the images whose questions name both."""
    texts, answers, ids = easy_vqa.get_test_questions()
    seen: dict[int, dict[str, str]] = defaultdict(dict)
    for q, a, i in zip(texts, answers, ids):
        seen[i].update(attributes(q, a))
    return {i: f"{a['color']}_{a['shape']}" for i, a in seen.items() if "color" in a and "shape" in a}


def test_the_build_copies_each_classed_test_image_into_its_class_folder(built: Path) -> None:
    classes = _package_classes()
    paths = easy_vqa.get_test_image_paths()
    expected = {f"{cls}/{i}.png" for i, cls in classes.items()}
    on_disk = {p.relative_to(built).as_posix() for p in built.rglob("*.png")}
    assert on_disk == expected and 0 < len(expected) < len(paths)  # only images with colour and shape
    for rel in sorted(expected)[::40]:
        image_id = int(Path(rel).stem)
        assert (built / rel).read_bytes() == Path(paths[image_id]).read_bytes()  # copies of the package's files
    manifest = json.loads((built / "manifest.json").read_text())
    assert set(manifest["files"]) == expected
    package = importlib.metadata.version("easy-vqa")
    assert manifest["packages"] == [{"name": "easy-vqa", "version": package}]
    assert manifest["options"] == {"easy_vqa": package} and manifest["version"].startswith(f"easy-vqa=={package}:")
    sizes = defaultdict(int)
    for cls in classes.values():
        sizes[cls] += 1
    counts = manifest["counts"]
    assert counts["classes"] == len(sizes) == 24 and counts["images"] == len(expected)
    assert counts["images_per_class"] == {"min": min(sizes.values()), "max": max(sizes.values())}
    assert counts["images_without_colour_and_shape"] == len(paths) - len(expected)


def test_loading_goes_through_the_class_folder_loader(built: Path) -> None:
    dataset = easyvqa_folders.load_built_folders()
    plain = load_class_folders(built, NAME)
    assert dataset.classes == plain.classes and dataset.image_paths == plain.image_paths
    assert dataset.version == json.loads((built / "manifest.json").read_text())["version"]
    assert dataset.descriptions["red_circle/" + Path(dataset.classes["red_circle"][0]).name] == "a red circle."
    assert set(dataset.descriptions) == set(dataset.image_paths)
    assert dataset.image(dataset.classes["blue_triangle"][0]).shape == (64, 64, 3)


def test_a_second_build_keeps_the_first_and_force_rewrites_it(built: Path) -> None:
    manifest = built / "manifest.json"
    before = manifest.stat().st_mtime_ns, manifest.stat().st_ino
    assert easyvqa_folders.build() == built
    assert (manifest.stat().st_mtime_ns, manifest.stat().st_ino) == before
    assert easyvqa_folders.build(force=True) == built
    assert manifest.stat().st_ino != before[1]
    assert easyvqa_folders.load_built_folders().version == json.loads(manifest.read_text())["version"]


@pytest.fixture
def copy(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the build in a home of its own, to damage."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    folder = tmp_path / "data" / NAME
    shutil.copytree(built, folder)
    return folder


def test_a_changed_image_is_one_line_naming_it(copy: Path) -> None:
    rel = sorted(json.loads((copy / "manifest.json").read_text())["files"])[5]
    (copy / rel).write_bytes((copy / rel).read_bytes()[:-10])
    with pytest.raises(HarnessError) as exc:
        easyvqa_folders.load_built_folders()
    assert f"built file {rel} does not match its checksum" in _one_line(exc)
    assert "data build easyvqa-folders --force" in str(exc.value)
    easyvqa_folders.build()  # an invalid build is rebuilt without --force
    assert easyvqa_folders.load_built_folders().classes


@pytest.mark.parametrize("damage", ["removed", "added"])
def test_a_removed_or_added_image_is_one_line_naming_it(copy: Path, damage: str) -> None:
    rel = sorted(json.loads((copy / "manifest.json").read_text())["files"])[0]
    if damage == "removed":
        (copy / rel).unlink()
        expected = f"built file {rel} is missing"
    else:
        shutil.copy(copy / rel, copy / "red_circle" / "extra.png")
        expected = "image red_circle/extra.png is not in manifest.json"
    with pytest.raises(HarnessError, match=re.escape(expected)) as exc:
        easyvqa_folders.load_built_folders()
    assert "--force" in _one_line(exc)


def test_not_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    with pytest.raises(HarnessError) as exc:
        easyvqa_folders.load_built_folders()
    assert "data source easyvqa-folders is not built: run `python -m harness data build easyvqa-folders`" in (
        _one_line(exc)
    )
    (line,) = easyvqa_folders.missing()
    assert "not built" in line and "data build easyvqa-folders" in line
    assert easyvqa_folders.availability().startswith("no: ")


def test_the_command_builds_it_and_names_known_builds(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    assert main(["data", "build", NAME]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "data" / NAME)
    assert easyvqa_folders.missing() == [] and easyvqa_folders.availability() == "yes (built)"
    assert main(["data", "build", "easyvqa-folder"]) == 2
    err = capsys.readouterr().err
    assert "unknown offline data source 'easyvqa-folder'; did you mean easyvqa-folders?" in err


def _caption_prompt(dataset, task_name: str = "miniimagenet-open") -> list:
    task = tasks.resolve(task_name)
    row = tasks.rows(task, dataset)[0]
    texts = conditions.stand_ins("caption", kind_of(task), task, dataset, 0)
    return conditions.apply("caption", tasks.build_prompt(task, dataset, row, []), dataset, texts)


# ---- the tasks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inner_shots", [1, 3, 5])
def test_open_episodes_have_distinct_support_and_a_query_outside_it(built: Path, inner_shots: int) -> None:
    dataset = easyvqa_folders.load_built_folders()
    task = tasks.resolve("easyvqa-folders-open", {"inner_shots": inner_shots})
    rows = tasks.rows(task, dataset)
    assert len(rows) == 200
    for row in rows:
        folders: dict[str, set[str]] = defaultdict(set)  # nonsense name -> class folders it was given to
        shots: dict[str, list[str]] = defaultdict(list)
        for key, name in row.support:
            folders[name].add(key.split("/")[0])
            shots[name].append(key)
        assert len(shots) == 2 and all(len(f) == 1 for f in folders.values())
        assert all(len(keys) == len(set(keys)) == inner_shots for keys in shots.values())
        assert row.image not in {key for key, _ in row.support}
        assert {row.image.split("/")[0]} == folders[row.answers[0]]


def test_caption_condition_on_the_built_tasks(built: Path) -> None:
    dataset = easyvqa_folders.load_built_folders()
    text = " ".join(_caption_prompt(dataset, "easyvqa-folders-open"))
    assert re.fullmatch(r"(An? \w+ (circle|rectangle|triangle)\. This is a [a-z]+\. ){2}An? \w+ (circle|rectangle|"
                        r"triangle)\. Question: What is this\? Answer: This is a", text), text  # fmt: skip
    real = " ".join(_caption_prompt(dataset, "easyvqa-folders-realname"))
    assert re.match(r"An? (\w+ (circle|rectangle|triangle))\. This is a \1\. ", real), real


def test_more_inner_shots_than_the_smallest_class_holds_is_one_line(built: Path) -> None:
    dataset = easyvqa_folders.load_built_folders()
    smallest = min(len(keys) for keys in dataset.classes.values())
    task = tasks.resolve("easyvqa-folders-open", {"inner_shots": smallest})
    with pytest.raises(HarnessError) as exc:
        tasks.rows(task, dataset)
    assert f"has {smallest} image(s); {smallest}-shot episodes need {smallest} support image(s) and a query" in (
        _one_line(exc)
    )
