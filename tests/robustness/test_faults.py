"""Faults during a run: out of memory, a full disk, two runs writing the results database at once."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def _run_dirs(task: str) -> list[Path]:
    from harness import paths

    return sorted(p.parent for p in (paths.home() / "runs" / task).glob("*/*/samples.jsonl"))


def test_out_of_memory_halves_the_batch_and_the_run_goes_on(tiny_hub, fast_recipe, monkeypatch, capsys):
    """Simulated on the CPU: generate raises torch.OutOfMemoryError above 2 prompts at once."""
    from harness.models.prefix import VisualPrefixModel

    real = VisualPrefixModel.generate
    sizes = []

    def tight(self, prompts, *args, **kwargs):
        sizes.append(len(prompts))
        if len(prompts) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, prompts, *args, **kwargs)

    sets = [a for s in [*fast_recipe, "seed=21"] for a in ("--set", s)]
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--quiet",
            "--batch-size", "8", "--limit", "20", *sets]  # fmt: skip
    before = set(_run_dirs("easyvqa-tiny"))  # the session's home holds other tests' runs of this task
    assert main(args) == 0  # trained and evaluated without the fault: the reference answers
    (folder,) = set(_run_dirs("easyvqa-tiny")) - before
    reference = json.loads((folder / "samples.jsonl").read_text().splitlines()[0])
    import shutil

    shutil.rmtree(folder)
    monkeypatch.setattr(VisualPrefixModel, "generate", tight)
    assert main(args) == 0
    (folder,) = set(_run_dirs("easyvqa-tiny")) - before
    samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 20 and samples[0]["prediction"] == reference["prediction"]
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) == 2  # halved twice, then kept small
    metrics = json.loads((folder / "metrics.json").read_text())
    assert [e["batch_size_now"] for e in metrics["events"]] == [4, 2]


def test_out_of_memory_at_batch_one_is_a_one_line_error(tiny_hub, fast_recipe, monkeypatch, capsys):
    from harness.models.prefix import VisualPrefixModel

    def never(self, prompts, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(VisualPrefixModel, "generate", never)
    sets = [a for s in [*fast_recipe, "seed=22"] for a in ("--set", s)]
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet", "--batch-size", "2", *sets]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: out of memory generating one answer")


def test_disk_full_stops_the_run_with_a_message_and_the_records_stay_readable(
    tiny_hub, fast_recipe, monkeypatch, capsys
):
    real_write = os.write
    calls = {"n": 0}

    def filling(fd, data):
        calls["n"] += 1
        if calls["n"] == 3:  # the third batch: half of it reaches the disk, then the disk is full
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    sets = [a for s in [*fast_recipe, "seed=23"] for a in ("--set", s)]
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--quiet",
            "--batch-size", "4", "--limit", "24", *sets]  # fmt: skip
    assert main(["train", "--model", "gpt2-frozen", "--quiet", *sets]) == 0
    before = set(_run_dirs("easyvqa-tiny"))  # the session's home holds other tests' runs of this task
    monkeypatch.setattr(os, "write", filling)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left on device" in err and "samples.jsonl" in err and "resume" in err
    (folder,) = set(_run_dirs("easyvqa-tiny")) - before
    lines = (folder / "samples.jsonl").read_bytes()
    assert lines.endswith(b"\n") and len(lines.splitlines()) == 8  # two whole batches, no torn line
    assert all(json.loads(x) for x in lines.splitlines())
    monkeypatch.setattr(os, "write", real_write)
    assert main(args) == 0  # the same command resumes and finishes
    samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == len({s["id"] for s in samples}) == 24


WRITER = """
import json, sys
from pathlib import Path
from harness.results.database import ResultsDB
from harness.results.rundir import RunDir
db = ResultsDB(Path(sys.argv[1]))
for i in range(40):
    run = RunDir(Path(sys.argv[2]) / f"{Path(sys.argv[2]).name}-run{i}")
    db.index(run)
db.close()
"""


def test_two_processes_writing_the_results_database_at_once_lose_nothing(tmp_path):
    config = {"model": {"recipe": {"name": "frozen"}, "lm": "gpt2"}, "task_version": 1, "task_fingerprint": "t"}
    for writer in ("a", "b"):
        for i in range(40):
            run = tmp_path / writer / f"{writer}-run{i}"
            run.mkdir(parents=True)
            (run / "config.json").write_text(json.dumps(config))
            metrics = {"task": "t", "model": "gpt2-frozen", "model_fingerprint": "f", "shots": 0, "seed": i,
                       "images": writer, "metric": "m", "score": 1.0, "ci95": [0, 2], "n": 1}  # fmt: skip
            (run / "metrics.json").write_text(json.dumps(metrics))
    db_path = tmp_path / "results.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(tmp_path / w)], env=env,
                              stderr=subprocess.PIPE, text=True) for w in ("a", "b")]  # fmt: skip
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (80,)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_or_inf_loss_stops_training_keeping_the_last_good_checkpoint(
    tiny_hub, fast_recipe, monkeypatch, capsys, bad
):
    from harness.config import parse_overrides
    from harness.models.prefix import VisualPrefixModel
    from harness.models.spec import resolve
    from harness.training import checkpoint

    overrides = [*fast_recipe, "steps=6", "save_every=2", f"seed={30 if bad == 'nan' else 31}"]
    real = VisualPrefixModel.forward  # every training loss goes through forward, packed or not
    step = {"n": 0}

    def diverging(self, *args, **kwargs):
        step["n"] += 1
        loss = real(self, *args, **kwargs)
        return loss * float(bad) if step["n"] == 4 else loss  # the 4th step (index 3) diverges

    monkeypatch.setattr(VisualPrefixModel, "forward", diverging)
    sets = [a for s in overrides for a in ("--set", s)]
    assert main(["train", "--model", "gpt2-frozen", "--quiet", *sets]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"loss is {bad} at step 3" in err and "(step 2) is kept" in err
    spec = resolve("gpt2-frozen", parse_overrides(overrides))
    assert checkpoint.load(spec.checkpoint_dir, spec.fingerprint).step == 2


def test_out_of_memory_in_training_splits_the_batch_and_trains_the_same_model(tiny_hub, fast_recipe, monkeypatch):
    """Simulated on the CPU: a forward pass of more than one image raises torch.OutOfMemoryError. The step is
    redone in halves, then quarters, gradients accumulated: the batch and the trained weights stay the same
    (the linear recipe, whose frozen encoder has no batch statistics)."""
    from harness.config import parse_overrides
    from harness.models.prefix import VisualPrefixModel
    from harness.models.spec import resolve
    from harness.training import checkpoint
    from harness.training.train import train

    overrides = parse_overrides([*fast_recipe, "steps=3", "seed=33", "pairs=1"])  # packed: whole sequences only
    spec = resolve("gpt2-linear", overrides)
    import shutil

    train(spec, progress=False)
    straight = checkpoint.load(spec.checkpoint_dir, spec.fingerprint).model

    shutil.rmtree(spec.checkpoint_dir)
    real = VisualPrefixModel.forward
    sizes = []

    def tight(self, images, *args, **kwargs):
        sizes.append(len(images))
        if len(images) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, images, *args, **kwargs)

    monkeypatch.setattr(VisualPrefixModel, "forward", tight)
    train(spec, progress=False)
    assert sizes[:3] == [4, 2, 1] and max(sizes[3:]) == 1 and len(sizes) == 2 + 3 * 4
    split = checkpoint.load(spec.checkpoint_dir, spec.fingerprint).model
    assert split.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(split[key], straight[key], rtol=1e-5, atol=1e-6, msg=key)
    events = [json.loads(x) for x in (spec.checkpoint_dir / "events.jsonl").read_text().splitlines()]
    assert [(e["stage"], e["step"], e["images_per_pass_now"]) for e in events] == [("train", 0, 2), ("train", 0, 1)]
