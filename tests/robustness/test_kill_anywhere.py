"""kill -9 at random moments of a sweep (training, then evaluation cells), several times, then a rerun:
the results are identical to an uninterrupted sweep's, with no sample lost or repeated and no file cut."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GRID = """\
tasks: [easyvqa-tiny, miniimagenet-open-tiny]
models: [gpt2-frozen]
shots: [0, 1]
seeds: [0]
images: [real]
limit: 24
batch_size: 4
set: {steps: 12, batch_size: 2, pairs: 2, image_size: 32, save_every: 2, train_data: tiny-shapes, seed: 51}
"""
KILLS = 5


def _sweep(home: Path, grid: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness", "sweep", str(grid), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def _results(home: Path) -> dict:
    """Everything a sweep leaves that must not depend on interruptions, each file checked whole."""
    from safetensors import safe_open

    out: dict = {}
    for path in sorted((home / "checkpoints").glob("*/checkpoint.safetensors")):
        with safe_open(str(path), "pt") as f:
            out[path.parent.name] = {k: f.get_tensor(k) for k in f.keys()}
    for path in sorted((home / "runs").glob("*/*/*/samples.jsonl")):
        raw = path.read_bytes()
        assert raw.endswith(b"\n"), f"{path}: a cut last line"
        samples = [json.loads(line) for line in raw.splitlines()]  # every line whole
        ids = [s["id"] for s in samples]
        assert len(ids) == len(set(ids)), f"{path}: a sample written twice"
        metrics = json.loads((path.parent / "metrics.json").read_text())
        key = str(path.parent.relative_to(home / "runs"))
        out[key] = ({i: (s["prediction"], s["score"]) for i, s in zip(ids, samples)},
                    {k: metrics[k] for k in ("n", "score", "ci95", "breakdown")})  # fmt: skip
    return out


def _equal(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict) and all(isinstance(v, torch.Tensor) for v in a[key].values()):
            assert a[key].keys() == b[key].keys()
            for name in a[key]:
                assert torch.equal(a[key][name], b[key][name]), (key, name)
        else:
            assert a[key] == b[key], key


@pytest.mark.slow
def test_a_sweep_killed_at_random_moments_ends_as_an_uninterrupted_one(tiny_hub, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    start = time.monotonic()
    proc = _sweep(straight, grid)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    duration = time.monotonic() - start
    reference = _results(straight)
    assert len(reference) == 1 + 3  # one checkpoint; easyvqa 0- and 1-shot, one naming cell

    rng = random.Random(int(os.environ.get("KILL_SEED", "20261123")))
    moments = []  # the seconds after start at which a run was killed
    for _ in range(3 * KILLS):  # a resumed run has less left to do and may finish before its moment
        proc = _sweep(killed, grid)
        moment = rng.uniform(0.2, 0.9) * duration  # start-up, training, evaluation or the database write
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            moments.append(round(moment, 1))
            if len(moments) == KILLS:
                break
    print(f"killed {len(moments)} runs, at {moments} s (uninterrupted: {duration:.1f} s)")
    assert len(moments) >= 3, moments
    proc = _sweep(killed, grid)
    assert proc.wait(timeout=600) == 0, (moments, proc.stderr.read().decode()[-2000:])
    _equal(_results(killed), reference)
    import sqlite3

    with sqlite3.connect(killed / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (3,)  # one row a cell, none twice
