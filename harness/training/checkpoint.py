"""Checkpoints: one safetensors file of trainable weights, optimizer state and RNG state, plus metadata.

Written atomically (temporary file, fsync, rename), so a run killed mid-write keeps the previous
checkpoint. Nothing is ever unpickled: optimizer state is stored as plain named tensors.

A checkpoint is untrusted input when read back. Its metadata holds ``sha256``: a hash over every
tensor (name, dtype, shape, bytes) and every other metadata entry, written at save time and checked
at load, so a changed byte anywhere (tensor data, names, shapes, step, fingerprint) or a truncated
file is refused with one line naming the file; safetensors itself refuses a malformed header. A
checkpoint made for another model fingerprint is refused too, never silently used or overwritten:
the folder is named by the fingerprint, so a mismatch means the file was copied, renamed or edited.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from harness.errors import HarnessError

FILENAME = "checkpoint.safetensors"
HASH_KEY = "sha256"


@dataclass
class Checkpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    rng: torch.Tensor
    meta: dict
    stamp: tuple = ()  # the file's (inode, size, mtime) when it was read: ``unchanged`` tells a rewrite


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def unchanged(folder: Path, saved: Checkpoint | None) -> bool:
    """Whether the checkpoint file in ``folder`` is still the one ``saved`` was read from (None: still none), so
    it need not be read again: another process may have written it since (a training waits for the one before)."""
    path = folder / FILENAME
    if saved is None:
        return not path.exists() and not path.is_symlink()
    try:
        return bool(saved.stamp) and _stamp(path) == saved.stamp
    except OSError:
        return False


def content_hash(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over the metadata (less the hash itself) and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != HASH_KEY}
    digest.update(json.dumps(meta, sort_keys=True, ensure_ascii=True).encode() + b"\n")
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        header = {"name": name, "dtype": str(tensor.dtype), "shape": list(tensor.shape)}
        digest.update(json.dumps(header, sort_keys=True, ensure_ascii=True).encode() + b"\n")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


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
    meta[HASH_KEY] = content_hash(tensors, meta)
    path = folder / FILENAME
    tmp = folder / f".{FILENAME}.{os.getpid()}.tmp"
    save_file(tensors, tmp, metadata=meta)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def stored_meta(folder: Path) -> dict:
    """The metadata of the checkpoint in ``folder`` without reading its tensors ({} when there is none);
    for reports about a checkpoint that ``load`` has already checked."""
    path = folder / FILENAME
    if not path.is_file():
        return {}
    with safe_open(path, "pt") as f:
        raw = f.metadata() or {}
    return {k: json.loads(v) for k, v in raw.items() if k not in ("step", HASH_KEY)}


def check_finite(path: Path, tensors: dict[str, torch.Tensor], advice: str) -> None:
    """Weights with a NaN or an infinity answer nothing (every prediction empty): refused, naming the tensor."""
    for name in sorted(tensors):
        tensor = tensors[name]
        if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise HarnessError(f"{path}: tensor '{name}' holds NaN or infinite values ({bad} of {tensor.numel()}); "
                               f"{advice}")  # fmt: skip


def load(folder: Path, fingerprint: str) -> Checkpoint | None:
    """The checkpoint in ``folder``, or None when there is none.

    Refused (HarnessError, one line naming the file): a file safetensors cannot read (truncated,
    malformed header), one whose content hash does not match (tampered or corrupted), one without a
    hash (not written by this harness), one with a NaN or infinite value in a tensor, and one made for
    another model fingerprint.
    """
    path = folder / FILENAME
    if not path.exists() and not path.is_symlink():
        return None
    delete = "delete it to retrain"
    if not path.is_file():
        raise HarnessError(f"{path}: checkpoint is not a regular file; {delete}")
    try:
        stamp = _stamp(path)
        with safe_open(path, "pt") as f:
            raw_meta = f.metadata() or {}
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"{path}: unreadable checkpoint ({reason}); {delete}") from None
    recorded = raw_meta.get(HASH_KEY)
    if not recorded:
        raise HarnessError(f"{path}: checkpoint has no content hash (not written by this harness version); {delete}")
    if content_hash(tensors, raw_meta) != recorded:
        raise HarnessError(f"{path}: checkpoint content does not match its sha256 (corrupted or modified); {delete}")
    check_finite(path, tensors, delete)
    try:
        meta = {k: json.loads(v) for k, v in raw_meta.items() if k not in ("step", HASH_KEY)}
        step = int(raw_meta["step"])
        rng = tensors["rng"]
    except (KeyError, ValueError) as exc:
        raise HarnessError(f"{path}: checkpoint metadata is incomplete ({exc}); {delete}") from None
    if meta.get("fingerprint") != fingerprint:
        raise HarnessError(
            f"{path}: checkpoint fingerprint {meta.get('fingerprint')} does not match the requested model {fingerprint}"
        )
    return Checkpoint(
        step=step,
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model/")},
        optimizer={k[6:]: v for k, v in tensors.items() if k.startswith("optim/")},
        rng=rng,
        meta=meta,
        stamp=stamp,
    )
