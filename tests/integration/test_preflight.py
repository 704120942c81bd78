"""The pre-flight: every missing piece a command needs (data, LM weights, Java, a writable home, a weights file, a
model's file) named in one message before anything is trained, loaded or written; `harness doctor` as a checklist."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.cli.main import main
from harness.data import sources
from harness.data.sources import SOURCES, Source
from harness.errors import HarnessError
from harness.evaluation import preflight

REPO = Path(__file__).resolve().parents[2]
DATA_VARIABLES = ("HARNESS_OKVQA_DIR", "HARNESS_VQAV2_DIR", "HARNESS_COCO_DIR", "HARNESS_KARPATHY_FILE")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh home, and none of the real datasets' variables set."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    for variable in DATA_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "home"


def _sets(fast_recipe: list[str]) -> list[str]:
    return [a for s in fast_recipe for a in ("--set", s)]


def _refused(capsys, args: list[str]) -> list[str]:
    """The lines of the error of a command refused with exit status 2."""
    assert main(args) == 2, args
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err.splitlines()


def test_missing_data_and_lm_weights_are_named_in_one_message_before_any_work(home, tiny_hub, capsys):
    start = time.perf_counter()
    lines = _refused(capsys, ["run", "--task", "okvqa", "--model", "pythia-410m-frozen", "--quiet"])
    assert time.perf_counter() - start < 15
    assert lines[0] == "error: cannot start: 2 things are missing:", lines
    assert len(lines) == 3 and all(line.startswith("  - ") for line in lines[1:]), lines
    okvqa, lm = lines[1:]
    assert "HARNESS_OKVQA_DIR" in okvqa and "OpenEnded_mscoco_{train2014,val2014}_questions.json" in okvqa
    assert "okvqa.allenai.org" in okvqa
    assert "LM 'pythia-410m'" in lm and "hf download EleutherAI/pythia-410m" in lm and "--lm-path" in lm
    assert not (home / "checkpoints").exists()


def test_the_coco_folder_and_karpathys_file_are_named_together(home, tiny_hub, fast_recipe, capsys, tmp_path,
                                                               monkeypatch):  # fmt: skip
    lines = _refused(capsys, ["run", "--task", "coco", "--model", "gpt2-frozen", "--quiet", *_sets(fast_recipe)])
    assert lines[0] == "error: cannot start: 2 things are missing:", lines
    assert "needs HARNESS_COCO_DIR" in lines[1] and "train2014/ and val2014/" in lines[1]
    assert (
        "dataset_coco.json" in lines[2] and "HARNESS_KARPATHY_FILE" in lines[2] and "caption_datasets.zip" in lines[2]
    )
    # The folder set, holding only train2014/: the missing val2014/ and the split file, together again.
    coco = tmp_path / "coco"
    (coco / "train2014").mkdir(parents=True)
    monkeypatch.setenv("HARNESS_COCO_DIR", str(coco))
    lines = _refused(capsys, ["run", "--task", "coco", "--model", "gpt2-frozen", "--quiet", *_sets(fast_recipe)])
    assert len(lines) == 3 and f"{coco / 'val2014'}: COCO image folder val2014/ not found" in lines[1], lines
    assert f"{coco / 'dataset_coco.json'}: Karpathy split file not found" in lines[2], lines
    assert not (home / "checkpoints").exists()


def test_missing_official_vqa_files_each_have_a_line(home, tmp_path, monkeypatch):
    [line] = sources.missing("okvqa")
    assert line.startswith("data source okvqa needs HARNESS_OKVQA_DIR: set it to the folder holding")
    folder = tmp_path / "okvqa"
    folder.mkdir()
    monkeypatch.setenv("HARNESS_OKVQA_DIR", str(folder))
    [line] = sources.missing("okvqa")
    assert "holds none of the question files" in line and "mscoco_{train2014,val2014}_annotations.json" in line
    (folder / "OpenEnded_mscoco_val2014_questions.json").write_text("{}")
    annotations, images = sources.missing("okvqa")
    assert annotations.startswith(f"{folder / 'mscoco_val2014_annotations.json'}: annotations file for")
    assert "image folder val2014/ not found" in images and "set HARNESS_COCO_DIR" in images
    (folder / "mscoco_val2014_annotations.json").write_text("{}")
    (folder / "val2014").mkdir()
    assert sources.missing("okvqa") == []


def test_missing_java_is_named_with_the_rest(home, tiny_hub, fast_recipe, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no java on it
    args = ["run", "--task", "coco-tiny", "--quiet", *_sets(fast_recipe), "--model"]
    [line] = _refused(capsys, [*args, "gpt2-frozen"])
    assert "caption metrics need Java" in line and "'java' is not on PATH" in line and "default-jre" in line
    lines = _refused(capsys, [*args, "opt-350m-frozen"])
    assert lines[0] == "error: cannot start: 2 things are missing:" and "Java" in lines[1] and "opt-350m" in lines[2]
    assert not (home / "checkpoints").exists()


def test_a_home_that_cannot_be_written_joins_the_list(tiny_hub, fast_recipe, capsys, tmp_path, monkeypatch):
    for variable in DATA_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "file" / "home"))
    lines = _refused(capsys, ["run", "--task", "okvqa", "--model", "gpt2-frozen", "--quiet", *_sets(fast_recipe)])
    assert lines[0] == "error: cannot start: 2 things are missing:", lines
    assert f"HARNESS_HOME {tmp_path / 'file' / 'home'}: cannot be made" in lines[1] and "HARNESS_OKVQA_DIR" in lines[2]


def test_a_missing_weights_file_and_a_missing_model_file_are_named(home, tiny_hub, fast_recipe, capsys, tmp_path):
    gone = tmp_path / "gone.safetensors"
    base = ["--task", "easyvqa-tiny", "--quiet", "--limit", "3"]
    [line] = _refused(capsys, ["eval", *base, "--model", "gpt2-frozen", *_sets(fast_recipe), "--checkpoint", str(gone)])
    assert line == f"error: --checkpoint {gone}: no such file (the weights trained elsewhere, a .safetensors file)"
    lines = _refused(capsys, ["run", "--task", "okvqa", "--quiet", "--model", f"{tmp_path}/mine.py:Mine"])
    assert lines[0] == "error: cannot start: 2 things are missing:", lines
    assert "HARNESS_OKVQA_DIR" in lines[1]
    assert (
        lines[2]
        == f"  - --model {tmp_path}/mine.py:Mine: no file {tmp_path}/mine.py (the Python file that defines Mine)"
    )
    assert not (home / "checkpoints").exists()


def test_sweep_and_both_checks_run_the_pre_flight(home, tiny_hub, fast_recipe, capsys, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"tasks": ["okvqa", "easyvqa-tiny"], "models": ["opt-350m-frozen"]}))
    lines = _refused(capsys, ["sweep", str(grid)])
    assert len(lines) == 3 and "HARNESS_OKVQA_DIR" in lines[1] and "LM 'opt-350m'" in lines[2], lines
    cell = {"task": "coco", "model": "gpt2-frozen", "checkpoint": "gone.safetensors", "expected": 1.0}
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(yaml.safe_dump({"cells": [cell]}))
    lines = _refused(capsys, ["check", "--baseline", str(baseline)])
    assert lines[0] == "error: cannot start: 3 things are missing:", lines
    assert f"  - {baseline} cell 1: --checkpoint {tmp_path / 'gone.safetensors'}: no such file" in lines[3], lines
    lines = _refused(capsys, ["check", "--invariance", "--task", "okvqa", "--model", "opt-350m-frozen"])
    assert len(lines) == 3 and "HARNESS_OKVQA_DIR" in lines[1] and "LM 'opt-350m'" in lines[2], lines
    assert not (home / "checkpoints").exists()


def test_a_ready_cell_passes_without_reading_its_data(home, tiny_hub, fast_recipe):
    from harness.config import parse_overrides

    loaded = dict(sources._CACHE)
    start = time.perf_counter()
    preflight.require(["easyvqa-tiny", "coco-tiny"], [preflight.Model("gpt2-frozen", parse_overrides(fast_recipe))])
    assert time.perf_counter() - start < 15
    assert sources._CACHE == loaded  # no data source was loaded
    assert not (home / "checkpoints").exists()


def test_a_source_from_a_plugin_says_what_it_lacks_through_available(monkeypatch):
    monkeypatch.setitem(SOURCES.items, "plugin-data", Source(lambda: None, lambda: "no: set PLUGIN_DATA_DIR"))
    assert sources.missing("plugin-data") == ["data source plugin-data: set PLUGIN_DATA_DIR"]
    monkeypatch.setitem(SOURCES.items, "plugin-data", Source(lambda: None, lambda: "yes"))
    assert sources.missing("plugin-data") == []
    with pytest.raises(HarnessError, match="cannot start: 2 things are missing"):
        preflight.require([], [preflight.Model("opt-350m-frozen", {"train_data": "okvqa"})])


def test_doctor_lists_what_is_ready_and_what_is_missing(home, tiny_hub, capsys):
    assert main(["doctor", "--task", "easyvqa-tiny", "--task", "okvqa", "--model", "gpt2-frozen"]) == 1
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert "| ready " in rows["data source tiny-shapes"] and "task easyvqa-tiny" in rows["data source tiny-shapes"]
    assert "| MISSING " in rows["data source okvqa"] and "HARNESS_OKVQA_DIR" in rows["data source okvqa"]
    assert "| ready " in rows["LM gpt2"] and "| ready " in rows["encoder efficientnet-lite0 weights"]
    assert "gpt2-frozen (training data)" in rows["data source easyvqa"] and "| ready " in rows["harness home"]
    assert out.rstrip().endswith("1 thing(s) missing: see the MISSING rows")
    assert main(["doctor", "--task", "easyvqa-tiny", "--model", "gpt2-frozen"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("everything asked about is ready")
    assert not (home / "checkpoints").exists()


@pytest.mark.slow
def test_doctor_of_everything_and_a_fresh_run_in_a_new_process(home, tmp_path):
    """As a user meets it: a new process, a fresh home and hub cache, the hub unreachable."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(home), "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--task", "okvqa", "--model", "gpt2-frozen"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert time.perf_counter() - start < 30
    assert done.returncode == 2 and done.stderr.startswith("error: cannot start: 2 things are missing:\n"), done.stderr
    assert "HARNESS_OKVQA_DIR" in done.stderr and "LM 'gpt2'" in done.stderr
    assert not (home / "checkpoints").exists()
    done = subprocess.run([sys.executable, "-m", "harness", "doctor"], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "| LM smollm2-135m " in done.stdout and "| data source coco " in done.stdout
    assert "| hub dataset lmms-lab/OK-VQA " in done.stdout and "hf download --repo-type dataset" in done.stdout
