"""Arithmetic precision: fp32, or bf16 compute with fp32 master weights and losses.

``--precision auto`` (the default) takes bf16 on CUDA, and on a CPU only where bf16 pays: the CPU has native
bf16 instructions (AVX512-BF16 or AMX), its kernels are not pinned below them (``harness check`` pins AVX2
for its baselines), and a bf16 matrix product measured on it runs at least 1.25x the fp32 rate. Native bf16
alone is not enough: on a Xeon with AVX512-BF16 and no AMX, bf16 products ran at half the fp32 rate, so bf16
would have slowed everything down.

That choice is training's. An evaluation computes in fp32 unless bf16 is asked for (``--precision bf16``), on
every device: answers must not depend on the batch size, order or process count (``harness check --invariance``),
and bf16's coarser rounding flips greedy answers with the batch (1 of 24 at batch size 1 on a CPU with AMX). The measurement (a 1024^3 product each way, a few hundredths of a
second) is made once per machine, torch version and thread count and kept in ``$HARNESS_HOME``, so a machine
decides the same way every time. The choice and its reason are recorded with every run (environment.json)
and said under the run's table.

The command line reads ``--precision``, else ``HARNESS_PRECISION`` (``requested``), and hands the choice down as
an argument; nothing below it reads the environment.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import TYPE_CHECKING

from harness import paths
from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

CHOICES = ("auto", "fp32", "bf16")
ENV = "HARNESS_PRECISION"
# What each device ran at before --precision existed: runs at that precision keep their record fingerprints.
LEGACY = {"cpu": "fp32", "cuda": "bf16"}


def requested() -> str:
    """The precision asked for by ``$HARNESS_PRECISION`` (auto when unset): for the command line alone."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise HarnessError(f"{ENV}={value!r}: expected one of {', '.join(CHOICES)}")
    return value


# bf16 is taken on a CPU when its products measure at least this many times the fp32 rate.
PAYS = 1.25


def cpu_bf16() -> tuple[bool, str]:
    """Whether bf16 pays on this CPU with the kernels this process may use, and why (not)."""
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, "this CPU has no native bf16 (no AVX512-BF16 or AMX)"
    pinned = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if pinned and "BF16" not in pinned and "AMX" not in pinned and pinned not in ("ALL", "DEFAULT"):
        return False, f"oneDNN's kernels are pinned to {pinned}, which has no bf16 instructions"
    rates = matmul_rates()
    ratio = rates["bf16"] / rates["fp32"]
    measured = (f"its bf16 matrix products measured {ratio:.2f}x the fp32 rate ({rates['bf16']:.0f} vs "
                f"{rates['fp32']:.0f} GFLOP/s, {rates['threads']} threads)")  # fmt: skip
    if ratio >= PAYS:
        return True, f"this CPU has native bf16 and {measured}"
    return False, f"this CPU has native bf16, but {measured}: fp32 is faster"


def matmul_rates(size: int = 1024, fresh: bool = False) -> dict:
    """GFLOP/s of a ``size``^3 matrix product in fp32 and in bf16 on this CPU at torch's thread count: measured
    once (the faster of three tries each, interleaved) and kept in $HARNESS_HOME/cpu-rates.json, per CPU,
    torch version and thread count; ``fresh`` measures again (``harness bench``)."""
    import torch

    key = f"{_cpu_name()}|torch {torch.__version__}|{torch.get_num_threads()} threads|{size}"
    path = paths.home() / "cpu-rates.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not fresh and isinstance(known.get(key), dict):
        return known[key]
    a, b = torch.randn(size, size), torch.randn(size, size)
    pairs = {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}
    best = {name: float("inf") for name in pairs}
    for _ in range(4):
        for name, (x, y) in pairs.items():
            start = time.perf_counter()
            x @ y
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: 2 * size**3 / seconds / 1e9 for name, seconds in best.items()}
    rates["threads"] = torch.get_num_threads()
    known[key] = rates
    try:
        paths.atomic_write_text(path, json.dumps(known, indent=1))
    except HarnessError:
        pass  # a read-only home measures again next time
    return rates


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Why ``auto`` evaluates in fp32, recorded with every such run.
EVALUATION_FP32 = "auto: fp32 for evaluation, whose answers must not depend on the batch (--precision bf16 for speed)"


def resolve(device: torch.device, choice: str = "auto", evaluation: bool = False) -> tuple[str, str]:
    """(precision, reason) for a model on ``device``: ``choice`` (fp32, bf16), or ``auto`` decided here: fp32 for a
    model that is to evaluate (``evaluation``), else what pays on the device."""
    if choice not in CHOICES:
        raise HarnessError(f"precision {choice!r}: expected one of {', '.join(CHOICES)}")
    if choice != "auto":
        return choice, f"--precision {choice}"
    if evaluation:
        return "fp32", EVALUATION_FP32
    if device.type == "cuda":
        return "bf16", "auto: bf16 on CUDA"
    if device.type != "cpu":
        return "fp32", f"auto: fp32 on {device.type}"
    native, why = cpu_bf16()
    return ("bf16", f"auto: {why}") if native else ("fp32", f"auto: {why}")
