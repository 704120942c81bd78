"""``harness bench``: training and evaluation speed, each figure beside a naive reference from the same run.

The naive reference is what a researcher writes first: a plain fp32 training loop at batch 32 whose
loss comes from the LM's full-vocabulary logits, and ``transformers``' ``generate`` called on one
prompt at a time. The harness's paths (``VisualPrefixModel.loss`` and ``generate``) run on the same
inputs. Every figure is the median of several timed repeats after warm-up, with the device
synchronised around each timed region; the JSON record keeps every setting and the FLOP formula.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
from dataclasses import asdict
from pathlib import Path

import torch
from tabulate import tabulate

from harness import paths, registry
from harness.checks.bench_measure import ANSWER_TOKENS, CAPTION_TOKENS, NAIVE_TRAIN_BATCH, SHOTS, SIZES, Bench, Sizes
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.kinds.base import kind_of
from harness.metrics.base import metric_of
from harness.models.devices import pick_device
from harness.models.loading import build
from harness.models.spec import resolve
from harness.precision import resolve as resolve_precision

log = logging.getLogger(__name__)


def cmd_bench(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    sizes = SIZES[args.size or ("full" if device.type == "cuda" else "quick")]
    sizes = Sizes(**{**asdict(sizes), **{k: v for k, v in
                                         (("train_batch", args.train_batch), ("eval_batch", args.eval_batch)) if v}})  # fmt: skip
    if min(sizes.train_batch, sizes.eval_batch, args.image_size) < 1:
        raise HarnessError("--train-batch, --eval-batch and --image-size must be positive")
    task = registry.TASKS.get(args.task)
    if kind_of(task).own_support or metric_of(task).sample is None:
        raise HarnessError(f"--task {task.name}: bench needs a task with few-shot support from a split and a score per "
                           "answer (a VQA task)")  # fmt: skip
    spec = resolve(f"{args.lm}-frozen", {"encoder": args.encoder, "image_size": args.image_size})
    dataset = tasks.load(task)
    # The naive measurements come first: fp32 (no autocast), the encoder in the default memory layout; the
    # model is tuned for its device after them.
    model = build(spec, "cpu").to(device)
    model.bf16 = False
    model.encoder.to(memory_format=torch.contiguous_format)
    model.channels_last = False
    chosen, reason = resolve_precision(device, args.precision)
    native = device.type == "cuda" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    precisions = ["fp32", "bf16"] if native else ["fp32"]
    bench = Bench(model, dataset, task, sizes, args.compile)
    record = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "environment": _environment(device),
        "settings": {
            "lm": spec.lm.spec.key, "encoder": spec.encoder.key, "task": task.name, "image_size": args.image_size,
            "n_prefix": spec.recipe.n_prefix, "recipe": "frozen (untrained prefix: speed only)",
            "caption_tokens": CAPTION_TOKENS, "answer_tokens": ANSWER_TOKENS, "shots": SHOTS,
            "naive_train_batch": NAIVE_TRAIN_BATCH, "compile": args.compile, "size": args.size or "default",
            **asdict(sizes),
        },
        "timing": "median of `repeats` timed repeats after `warmup` untimed ones, device synchronised",
        "precision": {"auto": chosen, "reason": reason, "measured": precisions},
        **bench.run(precisions, chosen),
    }  # fmt: skip
    print(tabulate(_table(record["measurements"]), headers=["measurement", "harness", "naive", "x naive"],
                   tablefmt="github", disable_numparse=True))  # fmt: skip
    folder = Path(args.out) if args.out else Path("results") / "bench"
    out = folder / f"{datetime.date.today().isoformat()}-{_slug(record['environment']['device'])}.json"
    paths.atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    print(f"unsuffixed figures at {chosen}, what --precision auto runs at here ({reason})")
    print(out)
    return 0


def _table(measurements: dict) -> list[list[str]]:
    def fmt(value: float | None, unit: str) -> str:
        if value is None:
            return ""
        if unit == "FLOP/s":
            return f"{value / 1e12:.3g} TFLOP/s"
        return f"{value:.3g} {unit}"

    return [
        [name, fmt(m["value"], m["unit"]), fmt(m["naive"], m["unit"]), f"{m['ratio']:.2f}x" if m["ratio"] else ""]
        for name, m in measurements.items()
    ]


def _environment(device: torch.device) -> dict:
    from harness.results.rundir import environment

    env = environment()
    if device.type == "cuda":
        env["device"] = torch.cuda.get_device_name(device)
    else:
        env["device"] = f"cpu ({torch.get_num_threads()} threads)"
    env["device_type"] = device.type
    return env


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().split("(")[0]).strip("-") or "device"
