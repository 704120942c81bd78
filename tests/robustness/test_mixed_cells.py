"""Nothing mixed (issue 16): one cell of every table is one task fingerprint (other task settings or data are
other rows and columns, labelled by what differs; seeds still pool), weights with a NaN or an infinity are
refused naming the tensor, a model that says nothing is said to, and --limit means what it says."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from harness.cli.main import main
from tests.robustness.conftest import FAST, cli_error, recorded
from tests.robustness.conftest import FAST_SETS as SETS

EASY = ["--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--quiet", *SETS]
PROMPT = "prompt='Q: {question} A:'"


def ok(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[str, str]:
    """Run the CLI in-process: exit 0 and no traceback; (stdout, stderr)."""
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return out, err


def board(capsys, path: Path) -> list[dict]:
    ok(capsys, ["leaderboard", "--csv", str(path)])
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.fixture(scope="module")
def cells_home(tmp_path_factory, tiny_hub):
    """A home with easyvqa-tiny --limit 20 run at seeds 0 and 1 and once with another prompt, and
    miniimagenet-open on two class folders (one missing a class)."""
    from harness import registry
    from harness.data import sources
    from harness.data.tiny_folders import write_class_folders

    root = tmp_path_factory.mktemp("cells")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(root / "home"))
        registry._load.cache_clear()
        sources._CACHE.clear()
        for extra in (["--seed", "0"], ["--seed", "1"], ["--task-set", PROMPT]):
            assert main(["run", *EASY, "--limit", "20", *extra]) == 0
        write_class_folders(root / "classes-a")
        write_class_folders(root / "classes-b")
        for image in (root / "classes-b" / "red_circle").iterdir():
            image.unlink()
        (root / "classes-b" / "red_circle").rmdir()
        for folder in ("classes-a", "classes-b"):
            mp.setenv("HARNESS_MINIIMAGENET_DIR", str(root / folder))
            sources._CACHE.clear()
            naming = ["--task", "miniimagenet-open", "--task-set", "episodes=20", "--limit", "4"]
            assert main(["run", *naming, "--model", "gpt2-frozen", "--images", "real", "--quiet", *SETS]) == 0
        yield root / "home"
    registry._load.cache_clear()
    sources._CACHE.clear()


@pytest.mark.slow
def test_other_task_settings_are_another_cell_and_seeds_still_pool(cells_home, capsys, tmp_path):
    before = recorded(cells_home)
    out, _ = ok(capsys, ["table", "--task", "easyvqa-tiny", "--no-published"])
    header, _, row = out.splitlines()[:3]
    assert "easyvqa-tiny 0-shot (first 20)" in header
    assert f"easyvqa-tiny [{PROMPT}] 0-shot (first 20)" in header
    assert "(n=2)*" in row and "(n=1)*" in row  # seeds 0 and 1 pooled; the other prompt alone
    rows = {r["task"]: r for r in board(capsys, tmp_path / "board.csv") if r["task"].startswith("easyvqa-tiny")}
    assert set(rows) == {"easyvqa-tiny", f"easyvqa-tiny [{PROMPT}]"}
    assert (rows["easyvqa-tiny"]["n_seeds"], rows["easyvqa-tiny"]["seeds"], rows["easyvqa-tiny"]["n_samples"]) == (
        "2", "0 1", "40"
    )  # fmt: skip
    assert (rows[f"easyvqa-tiny [{PROMPT}]"]["n_seeds"], rows[f"easyvqa-tiny [{PROMPT}]"]["n_samples"]) == ("1", "20")
    assert all(" " not in r["task_fingerprint"] for r in rows.values())  # one fingerprint a cell
    assert rows["easyvqa-tiny"]["task_fingerprint"] != rows[f"easyvqa-tiny [{PROMPT}]"]["task_fingerprint"]
    out, _ = ok(capsys, ["report", "--task", "easyvqa-tiny", "--out", str(tmp_path / "report")])
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert f"easyvqa-tiny [{PROMPT}] 0-shot (first 20)" in summary and "easyvqa-tiny 0-shot (first 20)" in summary
    assert recorded(cells_home) == before


def test_one_task_on_two_data_folders_is_two_cells_labelled_by_their_data(cells_home, capsys, tmp_path):
    before = recorded(cells_home)
    rows = [r for r in board(capsys, tmp_path / "board.csv") if r["task"].startswith("miniimagenet-open")]
    assert len(rows) == 2 and len({r["task"] for r in rows}) == 2, rows
    assert all(r["task"].startswith("miniimagenet-open 2-way [data ") and r["n_samples"] == "4" for r in rows), rows
    out, _ = ok(capsys, ["table", "--task", "miniimagenet-open", "--no-published"])
    assert out.count("miniimagenet-open 2-way [data ") == 2
    assert recorded(cells_home) == before


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_hub) -> dict[str, torch.Tensor]:
    """The trained weights of gpt2-frozen under the fast recipe (seed 71), trained once in a home of their own."""
    from harness.config import parse_overrides
    from harness.models.spec import resolve
    from harness.training import checkpoint
    from harness.training.train import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(tmp_path_factory.mktemp("weights") / "home"))
        spec = resolve("gpt2-frozen", parse_overrides([*FAST, "seed=71"]))
        train(spec, progress=False)
        return checkpoint.load(spec.checkpoint_dir, spec.fingerprint).model


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_weights_file_with_nan_or_inf_is_refused_naming_the_tensor(weights, fresh_home, capsys, tmp_path, bad):
    spoilt = {k: v.clone() for k, v in weights.items()}
    spoilt["prefix_map.weight"][0, 0] = bad
    save_file(spoilt, tmp_path / "spoilt.safetensors")
    args = ["eval", *EASY, "--limit", "4", "--checkpoint", str(tmp_path / "spoilt.safetensors")]
    line = cli_error(capsys, args)
    assert f"{tmp_path / 'spoilt.safetensors'}: tensor 'prefix_map.weight' holds NaN or infinite values (1 of" in line
    assert recorded(fresh_home) == {}  # nothing evaluated, nothing recorded
    save_file(weights, tmp_path / "fine.safetensors")  # the same file with finite values loads as before
    ok(capsys, ["eval", *EASY, "--limit", "4", "--checkpoint", str(tmp_path / "fine.safetensors")])


def test_a_checkpoint_of_the_harness_with_nan_is_refused_naming_the_tensor(weights, fresh_home, capsys):
    from harness.config import parse_overrides
    from harness.models.spec import resolve
    from harness.training import checkpoint

    spec = resolve("gpt2-frozen", parse_overrides([*FAST, "seed=72"]))
    spoilt = {k: v.clone() for k, v in weights.items()}
    spoilt["prefix_map.bias"][1] = float("nan")
    meta = {"fingerprint": spec.fingerprint, "model": spec.describe()}
    checkpoint.save(spec.checkpoint_dir, checkpoint.Checkpoint(4, spoilt, {}, torch.get_rng_state(), meta))
    before = recorded(fresh_home)
    line = cli_error(capsys, ["eval", *EASY, "--set", "seed=72", "--limit", "4"])
    path = spec.checkpoint_dir / checkpoint.FILENAME
    n = spoilt["prefix_map.bias"].numel()
    assert (
        line
        == f"error: {path}: tensor 'model/prefix_map.bias' holds NaN or infinite values (1 of {n}); delete it to retrain"
    )
    assert recorded(fresh_home) == before


def test_a_model_that_answers_nothing_is_said_to_in_every_table(weights, fresh_home, capsys, tmp_path, monkeypatch):
    from harness.models.prefix import VisualPrefixModel

    monkeypatch.setattr(VisualPrefixModel, "generate", lambda self, prompts, *a, **k: [""] * len(prompts))
    save_file(weights, tmp_path / "w.safetensors")
    out, _ = ok(capsys, ["eval", *EASY, "--limit", "4", "--checkpoint", str(tmp_path / "w.safetensors")])
    assert "0.00 (all answers empty)" in out
    out, _ = ok(capsys, ["table", "--no-published"])
    assert "0.00 (n=1)* (all answers empty)" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["run", *EASY, "--limit", "0"],
            "error: --limit expects how many queries to evaluate, 1 or more (leave it out for all of them), got 0",
        ),  # fmt: skip
        (["eval", *EASY, "--limit", "-5"], "got -5"),
        (["check", "--invariance", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--limit", "0"], "got 0"),
        (["show", "--task", "easyvqa-tiny", "--n", "-1"], "--n expects how many queries to show (1 or more), got -1"),
        (["run", *EASY, "--shots", "-4"], "--shots"),
        (["run", *EASY, "--batch-size", "-2"], "invalid batch_size = -2"),
    ],
)
def test_a_value_that_cannot_mean_anything_is_refused_before_anything_loads(fresh_home, capsys, args, expected):
    line = cli_error(capsys, args)
    assert expected in line, line
    assert recorded(fresh_home) == {}  # no model was loaded or trained: nothing recorded


@pytest.mark.parametrize(
    "field, expected", [("shots: [-4]", "shots"), ("limit: -1", "invalid limit = -1"), ("seeds: [x]", "seeds")]
)
def test_a_grid_value_that_cannot_mean_anything_is_refused_before_any_model_loads(fresh_home, capsys, tmp_path,
                                                                                   field, expected):  # fmt: skip
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"tasks: [easyvqa-tiny]\nmodels: [gpt2-frozen]\n{field}\nset: {{steps: 4, seed: 73}}\n")
    line = cli_error(capsys, ["sweep", str(grid), "--quiet"])
    assert expected in line, line
    assert recorded(fresh_home) == {}


@pytest.mark.parametrize("limit", ["24", "99999999999"])
def test_a_limit_that_covers_the_task_is_the_full_run(weights, fresh_home, capsys, caplog, tmp_path, limit):
    save_file(weights, tmp_path / "w.safetensors")
    args = ["run", *EASY, "--task-set", "subsample=24", "--checkpoint", str(tmp_path / "w.safetensors")]
    out, _ = ok(capsys, [*args, "--limit", limit])
    assert "(partial)" not in out and re.search(r"\|\s+24 \|", out), out
    [metrics] = list((fresh_home / "runs").rglob("metrics.json"))
    record = json.loads(metrics.read_text())
    assert record["limit"] == 0 and record["partial"] is False and record["n"] == 24
    before = recorded(fresh_home)
    caplog.set_level(logging.INFO, logger="harness")
    caplog.clear()
    ok(capsys, args)  # no --limit: the same run folder, read back
    assert "(read back)" in caplog.text and recorded(fresh_home) == before
    out, _ = ok(capsys, ["table", "--no-published"])
    assert "first" not in out and "*" not in out.splitlines()[2]
