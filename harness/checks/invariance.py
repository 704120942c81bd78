"""``harness check --invariance``: a model's answers must not depend on how the harness batches, orders or
splits the work. One cell is evaluated several ways, each from scratch in a throw-away home (never read
back from stored samples), and the predictions are compared item by item with the default batch's.

Variants: batch size 1, batch size 7, the default batch (the reference), queries answered in reverse and
in a seeded shuffled order, and 2 processes (torchrun: gloo on a CPU, NCCL on two or more GPUs). They run at the
precision the evaluation runs at (fp32 unless ``--precision bf16``: ``harness.precision``). On CUDA, the other
precision (bf16 autocast against fp32) is reported too, but not required to agree.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from harness import paths
from harness.errors import HarnessError
from harness.evaluation import preflight

log = logging.getLogger("harness")

# What a throw-away home shares with the real one: trained checkpoints, converted LMs, built data, hashes.
_SHARED = ("checkpoints", "lms", "data", "hashes")


@contextmanager
def throwaway_home(root: Path, name: str) -> Iterator[Path]:
    """``$HARNESS_HOME`` pointed at a fresh folder that links to the real home's models and data."""
    real = paths.home()
    home = root / name
    home.mkdir(parents=True)
    for part in _SHARED:
        (real / part).mkdir(parents=True, exist_ok=True)
        (home / part).symlink_to(real / part, target_is_directory=True)
    before = os.environ.get("HARNESS_HOME")
    os.environ["HARNESS_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("HARNESS_HOME", None)
        else:
            os.environ["HARNESS_HOME"] = before


def _predictions(run_dir: str) -> dict[str, str]:
    lines = (Path(run_dir) / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    return {s["id"]: s.get("prediction", s.get("skipped", "")) for s in map(json.loads, filter(None, lines))}


def _compare(reference: dict[str, str], other: dict[str, str]) -> list[str]:
    return sorted((k for k in reference.keys() | other.keys() if reference.get(k) != other.get(k)), key=str)


def _two_processes(args: argparse.Namespace, cell, model, device: str) -> tuple[dict[str, str], float]:
    """The prepared cell evaluated by ``harness eval`` under torchrun with two processes, in the current home.
    The workers are told the precision this process computes in (``--precision``, else what ``auto`` chose
    here), so their run is the reference's cell at the reference's precision."""
    from harness.results.records import RunRecord

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "harness",
               "eval", "--task", args.task, "--model", args.model, "--quiet", "--device", device,
               "--shots", str(args.shots_run), "--images", cell.settings.images, "--seed", str(cell.settings.seed)]  # fmt: skip
    command += ["--limit", str(cell.settings.limit)] if cell.settings.limit else []
    command += ["--split", cell.settings.split] if cell.settings.split else []
    command += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    command += [a for s in args.overrides for a in ("--set", s)]
    command += [a for s in args.task_overrides for a in ("--task-set", s)]
    command += ["--precision", model.precision] if getattr(model, "precision", "") else []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"--invariance: the 2-process evaluation failed (exit {done.returncode}): {last}")
    folder = cell.run_dir()
    done_metrics = folder.metrics()
    if done_metrics is None:
        raise HarnessError(f"--invariance: the 2-process evaluation left no metrics.json in {folder.folder}")
    record = RunRecord.from_json(done_metrics)
    return _predictions(str(folder.folder)), record.score


def cmd_invariance(args: argparse.Namespace) -> int:
    """Evaluate the cell every way; one line per variant; exit 1 when one that must agree does not."""
    import torch

    from harness import conditions
    from harness.config import parse_overrides
    from harness.evaluation import tasks
    from harness.evaluation.cells import expand
    from harness.evaluation.evaluate import EvalSettings, default_batch_size, evaluate, limit_option
    from harness.kinds.base import kind_of
    from harness.models.spec import resolve

    if not args.task or not args.model:
        raise HarnessError("--invariance needs --task and --model")
    task = tasks.resolve(args.task, parse_overrides(args.task_overrides))
    kind = kind_of(task)
    shots = int(args.shots) if args.shots is not None else kind.default_shots(task)
    kind.check_shots(task, [shots], "--shots")
    images = conditions.parse(args.images)
    args.limit = limit_option(args.limit)
    split = tasks.split_option(args.split)
    preflight.require([task], [preflight.model_of(args)])
    tasks.check_split(task, split)
    spec = resolve(args.model, parse_overrides(args.overrides), None, args.checkpoint)
    start = time.perf_counter()
    model, spec = spec.load(args.device, progress=not args.quiet, precision=args.precision)
    device = str(getattr(model, "device", "cpu"))
    default = default_batch_size(model)
    args.shots_run = shots
    failed = 0
    root = Path(tempfile.mkdtemp(prefix="harness-invariance-"))
    try:
        for planned in expand(spec, task, [shots], [args.seed], images, EvalSettings(limit=args.limit, split=split)):
            cell = planned.prepare(model)
            settings = cell.settings
            print(f"{spec.name} on {task.name}{' (dev)' if split else ''}, {shots}-shot, "
                  f"{conditions.label(settings.images)}, seed {args.seed}"
                  + (f", first {args.limit} queries" if args.limit else "")
                  + (f", computed in {model.precision}" if getattr(model, "precision", "") else ""))  # fmt: skip
            runs: list[tuple[str, dict, bool]] = [
                (f"batch size {default}", {"batch_size": default}, True),
                ("batch size 1", {"batch_size": 1}, True),
                ("batch size 7", {"batch_size": 7}, True),
                ("order reversed", {"batch_size": default, "order": "reversed"}, True),
                ("order shuffled", {"batch_size": default, "order": "shuffled"}, True),
            ]
            reference: dict[str, str] | None = None
            for label, how, required in runs:
                with throwaway_home(root, f"{len(os.listdir(root))}"):
                    run = replace(cell, settings=replace(settings, batch_size=how["batch_size"]))  # one run key
                    record = evaluate(model, run, False, how.get("order", "given"))
                    answers = _predictions(record.run_dir)
                if reference is None:
                    reference = answers
                    print(f"  {label} (the reference): {record.metric} {record.score:.2f}")
                    continue
                failed += _say(label, reference, answers, record.metric, record.score, required)
            two = _two_devices(device)
            if two is None:
                print("  2 processes: not run (one GPU: two processes would not run where the reference ran)")
            else:
                with throwaway_home(root, f"{len(os.listdir(root))}"):
                    answers, score = _two_processes(args, cell, model, two)
                failed += _say("2 processes", reference, answers, record.metric, score, True)
            if device.startswith("cuda") and hasattr(model, "bf16"):
                was = model.bf16
                model.bf16 = not was  # fp32 evaluation (the default) against bf16 autocast, or the other way
                try:
                    with throwaway_home(root, f"{len(os.listdir(root))}"):
                        record = evaluate(model, replace(cell, settings=replace(settings, batch_size=default)), False)
                        answers = _predictions(record.run_dir)
                finally:
                    model.bf16 = was
                _say("fp32 vs bf16" if was else "bf16 vs fp32", reference, answers, record.metric, record.score, False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"{'FAILED' if failed else 'passed'}: {failed} variant(s) that must agree did not; "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    return 1 if failed else 0


def _two_devices(device: str) -> str | None:
    """Where two processes run: the CPU for a CPU model; two GPUs for a GPU model, if there are two."""
    import torch

    if not device.startswith("cuda"):
        return "cpu"
    return "cuda" if torch.cuda.device_count() >= 2 else None


def _say(label: str, reference: dict[str, str], answers: dict[str, str], metric: str, score: float,
         required: bool) -> int:  # fmt: skip
    """Print one variant's line; 1 when it must agree with the reference and does not."""
    differ = _compare(reference, answers)
    if not differ:
        print(f"  {label}: identical ({metric} {score:.2f})")
        return 0
    shown = ", ".join(differ[:10]) + (f" and {len(differ) - 10} more" if len(differ) > 10 else "")
    note = "" if required else " (reported, not required)"
    print(f"  {label}: {len(differ)} of {len(reference)} differ: {shown} ({metric} {score:.2f}){note}")
    return int(required)
