"""--lm-device-map: the LM loaded split by accelerate (part on the CPU, one block offloaded to disk: the
only split a CPU-only machine has) answers exactly as the LM loaded whole; bad maps are one line."""

from __future__ import annotations

import json
import shutil

import pytest

from harness import paths
from harness.cli.main import main

SPLIT = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.h.0": "cpu", "transformer.h.1": "disk",
         "transformer.ln_f": "cpu", "lm_head": "cpu"}  # fmt: skip


def _predictions(task: str) -> dict[str, str]:
    [samples] = (paths.home() / "runs" / task).glob("*/*/samples.jsonl")
    return {s["id"]: s["prediction"] for s in map(json.loads, samples.read_text().splitlines())}


@pytest.mark.slow
def test_a_split_lm_gives_the_whole_lms_answers(tiny_hub, fast_recipe, tmp_path, monkeypatch, capsys, caplog):
    sets = [a for s in [*fast_recipe, "seed=47"] for a in ("--set", s)]
    args = ["--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--limit", "12", "--shots", "1",
            "--batch-size", "5", "--quiet", *sets]  # fmt: skip
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "whole"))  # its runs stay out of the other tests' tables
    (tmp_path / "map.json").write_text(json.dumps(SPLIT))
    split = ["--lm-device-map", str(tmp_path / "map.json")]
    assert main(["run", *args, *split]) == 2  # nothing trained yet: a split LM is for evaluation
    assert "train gpt2-frozen first" in capsys.readouterr().err
    assert main(["run", *args]) == 0
    whole = _predictions("easyvqa-tiny")
    # A fresh results store with the same checkpoint and data, so the evaluation is done again, split.
    old = paths.home()
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    shutil.copytree(old / "checkpoints", tmp_path / "home" / "checkpoints")
    (tmp_path / "home" / "data").symlink_to(old / "data")
    caplog.clear()
    assert main(["eval", *args, *split]) == 0
    offloaded = [r.getMessage() for r in caplog.records if "offloaded to the" in r.getMessage()]
    assert offloaded and "disk" in offloaded[0]  # accelerate's word that the block really left memory
    assert _predictions("easyvqa-tiny") == whole and len(whole) == 12


def test_bad_device_maps_are_one_line(tiny_hub, fast_recipe, tmp_path, capsys):
    base = ["eval", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet"]
    (tmp_path / "bad.json").write_text("{not json")
    for value, expected in [("everywhere", "not auto/balanced"), (str(tmp_path / "bad.json"), "bad.json: not valid JSON"),
                            ('["cpu"]', "expected a JSON object")]:  # fmt: skip
        assert main([*base, "--lm-device-map", value]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err
    assert main(["eval", "--task", "easyvqa-tiny", "--model", "gpt2-finetuned", "--lm-device-map", "auto"]) == 2
    assert "frozen LMs only" in capsys.readouterr().err
