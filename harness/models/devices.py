"""Where a model runs: ``--device auto|cpu|cuda|cuda:N``."""

from __future__ import annotations

import torch

from harness.errors import HarnessError


def pick_device(name: str | None = None) -> torch.device:
    """``None``/"auto": the GPU when there is one, else the CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HarnessError(f"--device: unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"--device {name}: no CUDA GPU is visible to torch here")
    return device
