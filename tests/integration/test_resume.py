"""kill -9 during training and evaluation: the rerun resumes from what finished and ends identically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config import parse_overrides
from harness.models.spec import resolve
from harness.training import checkpoint

REPO = Path(__file__).resolve().parents[2]
RECIPE = ["steps=400", "batch_size=2", "pairs=2", "image_size=32", "save_every=5", "train_data=tiny-shapes"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _saved_step(spec) -> int:
    try:
        saved = checkpoint.load(spec.checkpoint_dir, spec.fingerprint)
    except Exception:  # a checkpoint being renamed into place right now
        return 0
    return saved.step if saved else 0


@pytest.mark.slow
def test_kill_during_training_resumes_from_the_last_checkpoint(tiny_hub):
    spec = resolve("gpt2-frozen", parse_overrides(RECIPE))
    sets = [a for s in RECIPE for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli("train", "--model", "gpt2-frozen", "--quiet", *sets), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(lambda: _saved_step(spec) >= 10)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _saved_step(spec)
    assert 10 <= killed_at < 400, "the run must be killed mid-way for this test to mean anything"
    again = subprocess.run(_cli("train", "--model", "gpt2-frozen", "--quiet", *sets), env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"resuming gpt2-frozen from step {killed_at} of 400" in again.stderr
    assert _saved_step(spec) == 400


def test_resumed_training_ends_with_the_same_weights_as_an_uninterrupted_run(tiny_hub, monkeypatch):
    """A crash after a checkpoint, then a rerun: bit-identical weights (data order, optimizer, RNG restored)."""
    import shutil

    import pytest
    import torch

    from harness.models.prefix import VisualPrefixModel
    from harness.training.train import train

    spec = resolve("gpt2-finetuned", parse_overrides(["steps=6", "batch_size=2", "pairs=2", "image_size=32", "save_every=3",
                                                      "train_data=tiny-shapes", "seed=7"]))  # fmt: skip
    straight = {k: v.clone() for k, v in train(spec, progress=False).state_dict().items()}
    shutil.rmtree(spec.checkpoint_dir)

    calls = {"n": 0}
    real_forward = VisualPrefixModel.forward  # every training loss goes through forward, packed or not

    def crash_on_step_5(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(VisualPrefixModel, "forward", crash_on_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(spec, progress=False)
    assert checkpoint.load(spec.checkpoint_dir, spec.fingerprint).step == 3
    monkeypatch.setattr(VisualPrefixModel, "forward", real_forward)
    resumed = train(spec, progress=False).state_dict()
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    # both parts trained here, so the checkpoint names this machine's floats once
    from harness.training.train import trained_with

    here = trained_with(torch.device("cpu"))
    assert checkpoint.stored_meta(spec.checkpoint_dir)["trained_with"] == [here]
    assert (
        here["cpu_kernels"] == torch.backends.cpu.get_cpu_capability()
        and here["cpu_threads"] == torch.get_num_threads()
    )


@pytest.mark.slow
def test_kill_during_evaluation_loses_and_repeats_nothing(tiny_hub, fast_recipe):
    sets = [a for s in fast_recipe for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A seed no other test uses: a fresh run fingerprint, so this test never finds a finished run.
    base = ["--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet", "--images", "real", "--batch-size", "4",
            "--seed", "9", *sets]  # fmt: skip
    assert subprocess.run(_cli("train", "--model", "gpt2-frozen", "--quiet", *sets), env=env).returncode == 0
    runs = Path(os.environ["HARNESS_HOME"]) / "runs" / "easyvqa-tiny" / "gpt2-frozen"

    before = set(runs.iterdir()) if runs.exists() else set()

    def samples_written() -> int:
        files = [f for f in runs.glob("*/samples.jsonl") if f.parent not in before] if runs.exists() else []
        return sum(f.read_bytes().count(b"\n") for f in files)

    proc = subprocess.Popen(_cli("eval", *base), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: samples_written() >= 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = subprocess.run(_cli("eval", *base), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "already done" in result.stderr
    (folder,) = set(runs.iterdir()) - before
    lines = (folder / "samples.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 240
