"""Checkpoints: one safetensors file of trainable weights, optimizer state and RNG state, plus metadata.

Written atomically (temporary file, fsync, rename), so a run killed mid-write keeps the previous
checkpoint. Nothing is ever unpickled: optimizer state is stored as plain named tensors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from harness.errors import HarnessError

FILENAME = "checkpoint.safetensors"


@dataclass
class Checkpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    rng: torch.Tensor
    meta: dict


def save(folder: Path, ckpt: Checkpoint) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tensors, seen = {}, {}
    for key, value in ckpt.model.items():
        # Tied weights (an LM head sharing the embedding) are stored once; `load` restores the tie.
        ptr = (value.data_ptr(), value.shape)
        if ptr in seen:
            continue
        seen[ptr] = key
        tensors[f"model/{key}"] = value.detach().contiguous().cpu()
    tensors.update({f"optim/{k}": v.detach().contiguous().cpu() for k, v in ckpt.optimizer.items()})
    tensors["rng"] = ckpt.rng
    meta = {**{k: json.dumps(v) for k, v in ckpt.meta.items()}, "step": str(ckpt.step)}
    path = folder / FILENAME
    tmp = folder / f".{FILENAME}.{os.getpid()}.tmp"
    save_file(tensors, tmp, metadata=meta)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(folder: Path, fingerprint: str) -> Checkpoint | None:
    """The checkpoint in ``folder``, or None; refuses one made for another model fingerprint."""
    path = folder / FILENAME
    if not path.exists():
        return None
    try:
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            raw_meta = f.metadata() or {}
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise HarnessError(f"{path}: unreadable checkpoint ({exc}); delete it to retrain") from None
    meta = {k: json.loads(v) for k, v in raw_meta.items() if k != "step"}
    if meta.get("fingerprint") != fingerprint:
        raise HarnessError(
            f"{path}: checkpoint fingerprint {meta.get('fingerprint')} does not match the requested model {fingerprint}"
        )
    return Checkpoint(
        step=int(raw_meta["step"]),
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model/")},
        optimizer={k[6:]: v for k, v in tensors.items() if k.startswith("optim/")},
        rng=tensors["rng"],
        meta=meta,
    )
