"""torchrun with 2 processes on the CPU (gloo): the same answers, sample by sample, as 1 process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# pairs=2: each of 2 processes gets half the batch, one whole packed sequence.
RECIPE = ["steps=4", "batch_size=4", "pairs=2", "image_size=32", "save_every=2", "train_data=tiny-shapes", "seed=11"]
SETS = [a for s in RECIPE for a in ("--set", s)]


def _harness(home: Path, *args: str, procs: int = 1) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
                "-m", "harness"] if procs > 1 else [sys.executable, "-m", "harness"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _samples(home: Path, task: str) -> dict[str, dict]:
    runs = sorted((home / "runs" / task).glob("*/*/samples.jsonl"))
    assert len(runs) == 1
    lines = runs[0].read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert len({s["id"] for s in samples}) == len(samples)  # no id twice
    return {s["id"]: s for s in samples}


@pytest.mark.slow
@pytest.mark.parametrize("task, shots", [("easyvqa-tiny", "1"), ("miniimagenet-open-tiny", "1")])
def test_two_process_evaluation_matches_one_process_sample_by_sample(tiny_hub, tmp_path, task, shots):
    one, two = tmp_path / "one", tmp_path / "two"
    _harness(one, "train", "--model", "gpt2-frozen", "--quiet", *SETS)
    shutil.copytree(one, two)  # the same trained checkpoint for both
    args = ["eval", "--model", "gpt2-frozen", "--task", task, "--shots", shots, "--batch-size", "3", "--quiet", *SETS]
    single = _harness(one, *args)
    double = _harness(two, *args, procs=2)
    a, b = _samples(one, task), _samples(two, task)
    assert a.keys() == b.keys() and len(a) >= 20
    for i in a:
        assert (a[i]["prompt"], a[i]["prediction"], a[i]["score"]) == (
            b[i]["prompt"],
            b[i]["prediction"],
            b[i]["score"],
        ), i
    # Rank 0 alone printed the table, and it is the same table.
    assert single.stdout == double.stdout and single.stdout.count("gpt2-frozen") == 1
    metrics = [json.loads(next((h / "runs" / task).glob("*/*/metrics.json")).read_text()) for h in (one, two)]
    assert {k: v for k, v in metrics[0].items() if k != "run_dir"} == {
        k: v for k, v in metrics[1].items() if k != "run_dir"
    }


@pytest.mark.slow
def test_two_process_evaluation_killed_mid_run_resumes_with_nothing_lost_or_repeated(tiny_hub, tmp_path):
    import signal
    import time

    one, two = tmp_path / "one", tmp_path / "two"
    _harness(one, "train", "--model", "gpt2-frozen", "--quiet", *SETS)
    shutil.copytree(one, two)
    args = [
        "eval",
        "--model",
        "gpt2-frozen",
        "--task",
        "easyvqa-tiny",
        "--shots",
        "1",
        "--batch-size",
        "2",
        "--quiet",
        *SETS,
    ]
    _harness(one, *args)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(two), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness"]
    proc = subprocess.Popen([*launcher, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    samples = two / "runs" / "easyvqa-tiny"
    deadline = time.monotonic() + 300

    def written() -> int:
        files = list(samples.glob("*/*/samples.jsonl"))
        return len(files[0].read_bytes().splitlines()) if files else 0

    while written() < 30:
        assert time.monotonic() < deadline and proc.poll() is None, "the run must be killed mid-way"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks at once
    proc.wait()
    killed_at = written()
    assert 30 <= killed_at < 240
    _harness(two, *args, procs=2)
    a, b = _samples(one, "easyvqa-tiny"), _samples(two, "easyvqa-tiny")  # _samples checks: no id twice
    assert a.keys() == b.keys() and len(b) == 240
    assert all(a[i]["prediction"] == b[i]["prediction"] for i in a)


def _checkpoint(home: Path, model: str) -> tuple[dict[str, object], dict[str, str]]:
    from safetensors import safe_open

    [path] = (home / "checkpoints").glob(f"{model}-*/checkpoint.safetensors")
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["linear", "frozen"])
def test_two_process_training_with_half_batches_matches_one_process_with_the_whole_batch(tiny_hub, tmp_path, recipe):
    """The recipe's batch is the global batch: 2 processes take 2 of its 4 images each. With a frozen encoder
    (linear) the result is the one-process one to float precision. A trained encoder's BatchNorm normalises
    each process's share on the CPU (gloo has no synchronised BatchNorm; on GPUs it is synchronised)."""
    import torch

    one, two = tmp_path / "one", tmp_path / "two"
    args = ["train", "--model", f"gpt2-{recipe}", "--quiet", *SETS]
    _harness(one, *args)
    _harness(two, *args, procs=2)
    (a, meta_a), (b, meta_b) = _checkpoint(one, f"gpt2-{recipe}"), _checkpoint(two, f"gpt2-{recipe}")
    assert meta_a["step"] == meta_b["step"] == "4" and meta_a["fingerprint"] == meta_b["fingerprint"]
    assert a.keys() == b.keys()
    if recipe == "linear":
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
        return
    # frozen: the trained encoder's BatchNorm sees 2 images per process instead of 4, and Adam's first steps
    # follow gradient signs, so the weights part ways; both runs train every part the recipe trains.
    init = _initial_weights(recipe)
    for run in (a, b):
        trained = [k for k in init if init[k].is_floating_point() and (run[k] - init[k]).norm() > 0]
        assert any("prefix_map" in k for k in trained) and any("encoder" in k for k in trained)
        assert all(bool(torch.isfinite(run[k]).all()) for k in run if run[k].is_floating_point())


@pytest.mark.slow
def test_two_process_packed_training_matches_one_process(tiny_hub, tmp_path):
    """Packed sequences of 2 pairs, the embedding loss and a caption mixture: each of 2 processes takes one
    sequence of the 4-image batch, and the model is the one-process one (linear: no batch statistics)."""
    import torch

    one, two = tmp_path / "one", tmp_path / "two"
    packed = ["--set", "pairs=2", "--set", "aux_embed=0.5", "--set", "train_mix=[tiny-emoji:0.5]"]
    args = ["train", "--model", "gpt2-linear", "--quiet", *SETS, *packed]
    _harness(one, *args)
    _harness(two, *args, procs=2)
    (a, meta_a), (b, meta_b) = _checkpoint(one, "gpt2-linear"), _checkpoint(two, "gpt2-linear")
    assert meta_a["step"] == meta_b["step"] == "4" and meta_a["fingerprint"] == meta_b["fingerprint"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def _initial_weights(recipe: str) -> dict[str, object]:
    """The trained parts' weights before training (the build is seeded), keyed as in a checkpoint."""
    from harness.config import parse_overrides
    from harness.models.loading import build, trainable_state
    from harness.models.spec import resolve

    spec = resolve(f"gpt2-{recipe}", parse_overrides(RECIPE))
    return {f"model/{k}": v for k, v in trainable_state(build(spec, "cpu"), spec.recipe).items()}
