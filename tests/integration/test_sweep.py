"""harness sweep on a tiny grid: each model trained once, cells reused on a rerun, typos rejected."""

from __future__ import annotations

import pytest

from harness.cli.main import main

GRID = """
description: tiny grid for the tests
tasks: [easyvqa-tiny, miniimagenet-open-tiny]
models: [gpt2-frozen, gpt2-train-blind]
shots: [0, 1]
seeds: [0, 1]
images: [real]
ways: [2, 3]
limit: 6
set: {steps: 2, batch_size: 2, pairs: 2, image_size: 32, save_every: 1, train_data: tiny-shapes, seed: 3}
"""


@pytest.mark.slow
def test_sweep_trains_each_model_once_and_skips_done_cells(tiny_hub, tmp_path, caplog, capsys):
    grid = tmp_path / "tiny.yaml"
    grid.write_text(GRID)
    caplog.set_level("INFO")
    assert main(["sweep", str(grid), "--quiet"]) == 0
    assert caplog.text.count(": training it now") == 2  # one per model, shared across tasks
    assert "16 cells done" in capsys.readouterr().out  # 2 models x (vqa 2 shots + naming 2 ways) x 2 seeds
    caplog.clear()
    assert main(["sweep", str(grid), "--quiet"]) == 0
    assert "training" not in caplog.text and "resuming" not in caplog.text
    assert main(["table", "--task", "easyvqa-tiny", "--no-published"]) == 0
    out = capsys.readouterr().out
    assert "gpt2-train-blind" in out and "(n=2)*" in out
    assert main(["plot", "--task", "easyvqa-tiny", "--out", str(tmp_path / "plots")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    # This sweep's pictures (other tests' runs share the session's results database and add theirs).
    assert {"ablation-easyvqa-tiny-0shot-first6.png", "ablation-easyvqa-tiny-1shot-first6.png",
            "fewshot-easyvqa-tiny-first6.png"} <= set(pngs)  # fmt: skip
    assert all((tmp_path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # Naming: 2-way and 3-way are separate columns, never averaged, and plotted against ways.
    capsys.readouterr()
    assert main(["table", "--task", "miniimagenet-open-tiny*", "--no-published"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "miniimagenet-open-tiny 2-way 1-shot (first 6)" in header and "miniimagenet-open-tiny 3-way 1-shot" in header
    assert main(["plot", "--task", "miniimagenet-open-tiny*", "--out", str(tmp_path / "naming")]) == 0
    assert (tmp_path / "naming" / "naming-miniimagenet-open-tiny-first6.png").read_bytes()[:4] == b"\x89PNG"


def test_grid_typos_are_one_line_errors(tmp_path, capsys):
    grid = tmp_path / "bad.yaml"
    grid.write_text(GRID.replace("seeds:", "sedes:"))
    assert main(["sweep", str(grid)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown field 'sedes'" in err


def test_shipped_grids_name_real_tasks_models_and_recipes():
    from harness import paths, registry
    from harness.config import load_yaml
    from harness.evaluation.sweep import Grid

    grids = sorted((paths.REPO_ROOT / "baselines" / "grids").glob("*.yaml"))
    assert {g.stem for g in grids} >= {"frozen-ablation", "cpu-small"}
    for path in grids:
        grid = load_yaml(Grid, path, name=path.stem)
        assert all(t in registry.TASKS for t in grid.tasks)
        assert all(registry.parse_model_name(m) for m in grid.models)
    ablation = load_yaml(Grid, grids[[g.stem for g in grids].index("frozen-ablation")], name="frozen-ablation")
    ablations = set(registry.RECIPES.names()) - {"supervised"}  # an upper bound trained on the task, not an ablation
    assert {registry.parse_model_name(m).recipe.name for m in ablation.models} == ablations
    assert ablation.shots == (0, 1, 4) and len(ablation.seeds) == 3


def test_grid_options_cross_the_naming_settings_and_leave_vqa_alone(tiny_hub, tmp_path, capsys):
    from harness.evaluation.sweep import grid_cells

    grid = tmp_path / "options.yaml"
    grid.write_text(
        GRID.replace("ways: [2, 3]", "ways: [2, 3]\ninner_shots: [1, 3]\noptions: {induction: [false, true]}")
    )
    cells = grid_cells(grid)
    naming = [c for c in cells if c.task.name.startswith("miniimagenet")]
    vqa = [c for c in cells if c.task.name.startswith("easyvqa")]
    settings = {(c.task.options["ways"], c.task.options["induction"], c.task.options["inner_shots"]) for c in naming}
    assert settings == {(w, i, s) for w in (2, 3) for i in (False, True) for s in (1, 3)}
    assert len(naming) == 2 * 8 * 2 and len(vqa) == 2 * 2 * 2  # models x settings x seeds; models x shots x seeds
    assert {c.settings.shots for c in vqa} == {0, 1}  # inner_shots leaves the VQA task's shots alone
    for bad, says in (("{induction: true}", "non-empty list"), ("{colour: [red]}", "no task of the grid")):
        grid.write_text(GRID + f"options: {bad}\n")
        assert main(["sweep", str(grid)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and says in err
