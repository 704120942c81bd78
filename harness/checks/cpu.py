"""What changes a CPU's floats, and pinning it: torch's thread count and the vector instructions torch, MKL
and oneDNN choose (AVX-512 where the CPU has it, AVX2 where not). A sum splits by threads, and a few dozen
training steps amplify a last-bit difference into other weights and other answers, so regression checks
pin both, and run records and checkpoints record them (docs/regression-checks.md).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from harness.errors import HarnessError

log = logging.getLogger("harness")

# cpu_kernels -> the environment that asks torch (ATen), MKL and oneDNN for that instruction set. All
# three read it when first used, not at import, so setting it before any CPU computation is enough.
CPU_KERNELS = {
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
    },
}


def floats_of(env: dict) -> tuple | None:
    """(kernels, threads) of a CPU training or run record; None where not recorded or not on a CPU."""
    if not str(env.get("device", "")).startswith("cpu") or "cpu_kernels" not in env:
        return None
    return env["cpu_kernels"], env["cpu_threads"]


def floats_now(model) -> tuple | None:
    import torch

    if getattr(getattr(model, "device", None), "type", "") != "cpu":
        return None
    return torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()


def say(floats: tuple) -> str:
    return f"{floats[0]} CPU kernels and {floats[1]} thread(s), not this check's"


@contextmanager
def pinned_threads(count: int):
    """torch's CPU threads set to ``count`` inside, restored after: a CPU sum splits by thread count, so
    training with 1 and with 2 threads ends with slightly different weights and some different answers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pin_cpu_kernels(kernels: str, where: str) -> str:
    """Ask torch, MKL and oneDNN for ``kernels``' instruction set; torch's CPU capability in effect after.

    One line, not a silent mismatch, when this process already computed on the CPU with wider kernels
    (torch fixes its choice at the first vectorised operation); a CPU without the instruction set runs
    what it has, with a warning.
    """
    import torch

    env = CPU_KERNELS[kernels]
    os.environ.update(env)
    now = torch.backends.cpu.get_cpu_capability()
    if now.lower() == kernels:
        return now
    order = list(CPU_KERNELS)
    if now.lower() in order and order.index(now.lower()) > order.index(kernels):
        start = " ".join(f"{k}={v}" for k, v in env.items())
        raise HarnessError(
            f"{where}: cpu_kernels: {kernels}, but this process already runs torch's {now} CPU kernels: "
            f"start it with {start} in the environment"
        )
    log.warning("%s: cpu_kernels: %s, but this CPU runs torch's %s kernels: scores may move", where, kernels, now)
    return now
