"""The command line end to end on the tiny task: run/train/eval/list, the hub path, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_run_trains_then_reuses_the_checkpoint_and_prints_the_table(tiny_hub, fast_recipe, capsys, caplog):
    caplog.set_level("INFO")
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet"]
    args += [a for s in fast_recipe for a in ("--set", s)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "real images" in out and "images blacked out" in out and "95% CI" in out
    assert "training it now" in caplog.text
    caplog.clear()
    assert main(args) == 0
    assert "loaded the trained checkpoint" in caplog.text
    assert "training it now" not in caplog.text
    run_dirs = [line.split("run record: ")[1] for line in caplog.text.splitlines() if "run record: " in line]
    assert len(run_dirs) == 2
    for folder in map(Path, run_dirs):
        metrics = json.loads((folder / "metrics.json").read_text())
        samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        assert metrics["n"] == len(samples) == 240
        assert len({s["id"] for s in samples}) == 240
        assert {"id", "prompt", "prediction", "references", "score"} <= set(samples[0])
        assert samples[0]["prompt"].startswith("<image:test/")
        config = json.loads((folder / "config.json").read_text())
        assert config["model"]["lm_identity"].startswith("hub:openai-community/gpt2@")
        env = json.loads((folder / "environment.json").read_text())
        assert (
            env["torch"] and env["cpu_kernels"] == torch.backends.cpu.get_cpu_capability() and env["cpu_threads"] >= 1
        )


def test_eval_without_a_checkpoint_is_a_one_line_error(tiny_hub, capsys):
    assert main(["eval", "--task", "easyvqa-tiny", "--model", "gpt2-linear", "--set", "steps=99", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no trained checkpoint" in err and "harness train" in err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozn"], "unknown model"),
        (["run", "--task", "easyvqa-tiny", "--model", "gtp2-frozen"], "did you mean gpt2"),
        (["run", "--task", "easyvqa-tiy", "--model", "gpt2-frozen"], "did you mean easyvqa-tiny"),
        (["train", "--model", "gpt2-frozen", "--set", "stepz=3"], "unknown field 'stepz' (did you mean 'steps'?)"),
        (["train", "--model", "gpt2-frozen", "--set", "steps=many"], "field 'steps' must be int"),
        (["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--shots", "one"], "--shots"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_hub, capsys, args, expected):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err


def test_hub_model_missing_offline_says_which_and_how(capsys):
    assert main(["train", "--model", "gpt2-xl-frozen"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "openai-community/gpt2-xl" in err and "--lm-path" in err and "hub cache" in err


@pytest.mark.slow
def test_lm_path_loads_a_saved_model_folder(tiny_hub, fast_recipe, capsys):
    args = ["train", "--model", "gpt2-xl-frozen", "--lm-path", str(tiny_hub["gpt2"]), "--quiet"]
    assert main(args + [a for s in fast_recipe for a in ("--set", s)]) == 0
    assert "gpt2-xl-frozen" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["models", "lms", "encoders", "recipes", "tasks"])
def test_list(what, capsys):
    assert main(["list", what]) == 0
    out = capsys.readouterr().out
    expected = {"models": "smollm2-135m-frozen", "lms": "pythia-1b", "encoders": "nf_resnet50",
                "recipes": "train-blind", "tasks": "easyvqa-tiny"}[what]  # fmt: skip
    assert expected in out


def test_list_wildcards_and_availability(tiny_hub, capsys):
    assert main(["list", "lms", "gpt2*"]) == 0
    out = capsys.readouterr().out
    assert "gpt2-medium" in out and "smollm2" not in out
    lines = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| gpt2")}
    assert "yes (hub cache)" in lines["gpt2"] and "needs the model hub" in lines["gpt2-xl"]
    assert main(["list", "models", "smollm2-135m-*"]) == 0
    assert "alias of smollm2-135m-frozen" not in capsys.readouterr().out
    assert main(["list", "models", "smollm2-f*"]) == 0
    assert "alias of smollm2-135m-frozen" in capsys.readouterr().out


@pytest.mark.slow
def test_module_and_console_script_are_the_same_cli():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    module = subprocess.run(
        [sys.executable, "-m", "harness", "list", "recipes"], capture_output=True, text=True, env=env
    )
    assert module.returncode == 0 and "linear" in module.stdout
    script = Path(sys.executable).with_name("harness")  # installed by scripts/setup.sh (pip install -e)
    console = subprocess.run([str(script), "list", "recipes"], capture_output=True, text=True, env=env)
    assert console.stdout == module.stdout


def test_readme_test_command_is_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme = (REPO / "README.md").read_text()
    assert ci in readme
