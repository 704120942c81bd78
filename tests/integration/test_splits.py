"""Dev and test splits, and training seeds: a dev cell's queries are disjoint from the test queries and from
every image a training reads or a dev prompt shows as support; each training seed is a model of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.config import parse_overrides
from harness.data import dev, sources
from harness.evaluation import tasks
from harness.evaluation.cells import expand, train_seed_option
from harness.evaluation.evaluate import EvalSettings
from harness.evaluation.sweep import grid_cells
from harness.models.spec import resolve, train_data_version
from harness.results.records import RunRecord
from harness.training import checkpoint
from harness.training.trainset import TrainSet

_IMAGE = re.compile(r"<image:([^>]+)>")


def _run_dirs(caplog) -> list[Path]:
    return [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]


def _samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def test_a_dev_run_is_disjoint_from_test_from_training_and_from_its_support(tiny_hub, fast_recipe, caplog, capsys):
    caplog.set_level("INFO")
    args = ["run", "--task", "easyvqa-attr-tiny", "--model", "gpt2-frozen", "--quiet", "--split", "dev"]
    args += ["--shots", "2", "--images", "real"] + [a for s in fast_recipe for a in ("--set", s)]
    assert main(args) == 0
    assert "easyvqa-attr-tiny (dev)" in capsys.readouterr().out
    (folder,) = _run_dirs(caplog)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["split"] == "dev" and RunRecord.from_json(metrics).split == "dev"
    samples = _samples(folder)
    task = tasks.resolve("easyvqa-attr-tiny")
    dataset = sources.load("tiny-shapes")
    test_rows = tasks.rows(task, dataset)
    held = dev.dev_images(dataset)
    assert len(samples) == metrics["n"] > 0
    # The queries: the dev images' questions, none of them a test query or on a test image.
    query_images = {_IMAGE.findall(s["prompt"])[-1] for s in samples}
    assert query_images <= held
    assert not {s["id"] for s in samples} & {r.id for r in test_rows}
    assert not query_images & {r.image for r in test_rows}
    # The support shown in dev prompts: never a dev image.
    support = {key for s in samples for key in _IMAGE.findall(s["prompt"])[:-1]}
    assert support and not support & held
    # What the model trained on: every image of every training step, none of them a dev image.
    spec = resolve("gpt2-frozen", parse_overrides(fast_recipe))
    trainset = TrainSet(spec.recipe)
    trained = {item.image for sequence in trainset.sequences(10**6) for item in sequence}
    assert trained and not trained & held
    readable = {item.image for item in trainset.pools[0][1]}  # every image a training step can draw
    assert readable == set(dev.training_images(dataset)) - held
    # The same run on test records no split, so a test run's record and fingerprint are what they were.
    caplog.clear()
    assert main([a for a in args if a not in ("--split", "dev")]) == 0
    (test_folder,) = _run_dirs(caplog)
    test_metrics = json.loads((test_folder / "metrics.json").read_text())
    assert "split" not in test_metrics and RunRecord.from_json(test_metrics).split == ""
    assert test_folder != folder


def test_dev_images_are_a_seeded_tenth_and_fingerprinted_into_the_training_data():
    dataset = sources.load("tiny-shapes")
    images = dev.training_images(dataset)
    held = dev.dev_images(dataset)
    assert len(images) == 240 and len(held) == 24 == dev.dev_size(240)
    assert dev.dev_size(30) == 7 and dev.dev_size(100) == 20 and dev.dev_size(4000) == 400 and dev.dev_size(0) == 0
    spec = resolve("gpt2-frozen", parse_overrides(["train_data=tiny-shapes"]))
    assert spec.data_version == dataset.version + dev.holdout_tag(dataset) != dataset.version
    # A test task reads the source as it is: its fingerprint, and those of runs of models trained elsewhere, stay.
    task = tasks.resolve("easyvqa-tiny")
    assert tasks.load(task) is dataset and tasks.for_split(task, "test") is task


def test_training_questions_and_train_mix_sources_leave_the_dev_images_out(tiny_hub):
    recipe = resolve("gpt2-supervised", parse_overrides(["train_data=tiny-shapes", "train_text=vqa"])).recipe
    shapes = sources.load("tiny-shapes")
    pool = TrainSet(recipe).pools[0][1]
    assert pool and not {item.image for item in pool} & dev.dev_images(shapes)
    mixed = resolve("gpt2-frozen", parse_overrides(["train_data=tiny-shapes", "train_mix=[tiny-emoji:0.5]"]))
    emoji = sources.load("tiny-emoji")
    (name, items, _) = TrainSet(mixed.recipe).pools[1]
    assert name == "tiny-emoji" and items and not {it.image for it in items} & dev.dev_images(emoji)
    assert train_data_version(mixed.recipe).endswith(dev.holdout_tag(emoji))


def test_an_official_dev_split_is_used_as_it_is():
    from harness.data.types import Caption, Dataset, Row

    splits = {s: [Row(f"{s}-{i}", f"{s}/{i}", answers=("a",), answer_type="caption") for i in range(3)]
              for s in ("train", "val", "test")}  # fmt: skip
    captions = {s: [Caption(r.image, "a") for r in rows] for s, rows in splits.items()}
    dataset = Dataset("karpathy-like", "v1", splits, captions, dev_split="val")
    view = dev.dev_view(dataset)
    assert view.splits["dev"] == splits["val"] and view.splits["train"] == splits["train"]
    assert dev.dev_images(dataset) == frozenset() and dev.holdout_tag(dataset) == ""


def test_naming_dev_episodes_query_held_images_and_show_others():
    task = tasks.for_split(tasks.resolve("emoji-open-tiny"), "dev")
    dataset = tasks.load(task)
    rows = tasks.rows(task, dataset)
    test = tasks.rows(tasks.resolve("emoji-open-tiny"), sources.load("tiny-emoji"))
    assert rows and all(r.image in dataset.held_out for r in rows)
    assert not {k for r in rows for k, _ in r.support} & dataset.held_out
    assert not {r.image for r in rows} & {r.image for r in test}


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--task", "easyvqa-tiny", "--split", "val"], "--split expects dev or test, got 'val'"),
        (["--task", "miniimagenet-realname-tiny", "--split", "dev"], "tiny-miniimagenet has no dev split"),
        (["--task", "miniimagenet-frozen-episodes-tiny", "--split", "dev"], "has no dev split"),
        (["--task", "miniimagenet-open-tiny", "--split", "dev"], "it has no dev split"),
        (["--task", "easyvqa-tiny", "--train-seeds", "a,b"], "--train-seeds expects distinct whole numbers"),
        (["--task", "easyvqa-tiny", "--train-seeds", "0,-1"], "got '-1'"),
        (["--task", "easyvqa-tiny", "--train-seeds", ""], "--train-seeds expects"),
        (["--task", "easyvqa-tiny", "--train-seeds", "1,,2"], "--train-seeds expects"),
        (["--task", "easyvqa-tiny", "--train-seeds", "1,1"], "got 1 twice"),
        (["--task", "easyvqa-tiny", "--train-seeds", "0,1", "--set", "seed=3"], "both set the training seed"),
    ],
)
def test_bad_splits_and_training_seeds_are_one_line_errors(tiny_hub, capsys, args, expected):
    assert main(["run", "--model", "gpt2-frozen", "--quiet", "--set", "steps=99", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err


def test_training_seeds_need_a_model_trained_here(tiny_hub, tmp_path, capsys):
    model = tmp_path / "mine.py"
    model.write_text(
        "class M:\n    def generate(self, prompts, max_new_tokens, stop):\n        return ['']*len(prompts)\n"
    )
    assert main(["run", "--task", "easyvqa-tiny", "--model", f"{model}:M", "--train-seeds", "0,1", "--quiet"]) == 2
    assert "is not trained by this harness" in capsys.readouterr().err


def test_two_training_seeds_are_two_models_and_two_runs(tiny_hub, fast_recipe, caplog, capsys):
    caplog.set_level("INFO")
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-linear", "--quiet", "--images", "real"]
    args += ["--limit", "8", "--train-seeds", "0,1"] + [a for s in fast_recipe for a in ("--set", s)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "train seed" in out.splitlines()[0]
    folders = _run_dirs(caplog)
    records = [json.loads((f / "metrics.json").read_text()) for f in folders]
    assert sorted(r["train_seed"] for r in records) == [0, 1] and len(set(folders)) == 2
    assert len({r["model_fingerprint"] for r in records}) == 2 and len({r["model_family"] for r in records}) == 1
    specs = [resolve("gpt2-linear", parse_overrides([*fast_recipe, f"seed={s}"])) for s in (0, 1)]
    for spec in specs:
        assert (spec.checkpoint_dir / checkpoint.FILENAME).is_file()
    assert {s.fingerprint for s in specs} == {r["model_fingerprint"] for r in records}


def test_cells_expand_per_training_seed_and_split():
    spec = resolve("gpt2-frozen", parse_overrides(["train_data=tiny-shapes"]))
    task = tasks.resolve("easyvqa-tiny")
    cells = expand(spec, task, [0, 1], [0], ["real"], EvalSettings(split="dev"), train_seeds=(0, 1, 2))
    assert len(cells) == 3 * 2 and [c.spec.train_seed for c in cells[::2]] == [0, 1, 2]
    assert all(c.task.split == "dev" and c.settings.describe()["split"] == "dev" for c in cells)
    assert "split" not in EvalSettings().describe()
    assert train_seed_option(None) == () and train_seed_option([2, 0]) == (2, 0)
    with pytest.raises(Exception, match="got True"):
        train_seed_option([True])


def test_grid_split_and_train_seeds(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    base = "tasks: [easyvqa-tiny]\nmodels: [gpt2-frozen]\nimages: [real]\nset: {train_data: tiny-shapes}\n"
    grid.write_text(base + "split: dev\ntrain_seeds: [0, 1]\n")
    cells = grid_cells(grid)
    assert len(cells) == 2 and {c.spec.train_seed for c in cells} == {0, 1}
    assert all(c.settings.split == "dev" and c.task.split == "dev" for c in cells)
    assert {c.settings.split for c in grid_cells(grid, split="test")} == {""}
    assert len(grid_cells(grid, train_seeds="4,5,6")) == 3
    for extra, expected in [("split: val\n", "g.yaml: split expects dev or test"),
                            ("train_seeds: [-1]\n", "g.yaml: train_seeds expects"),
                            ("train_seeds: [a]\n", "field 'train_seeds' must be"),
                            ("train_seeds: [1]\nset: {seed: 2}\n", "both set the training seed")]:  # fmt: skip
        text = base.replace("set: {train_data: tiny-shapes}\n", "") if "set:" in extra else base
        grid.write_text(text + extra)
        assert main(["sweep", str(grid), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected in err, err
