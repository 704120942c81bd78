"""Training-loss curves, read without torch: the ``train_log.jsonl`` beside each checkpoint.

Training (harness.training.train) appends one line per step, ``{"step", "loss", "lr", "seconds"}``, before it saves
the checkpoint those steps lead to. ``seconds`` counts from the start of that training process, so a
resumed training starts it again from 0. A step logged twice (a kill between the log and the checkpoint,
then the step redone) is read once, the later line winning; a line torn by a kill is skipped.

``trained_models`` lists the checkpoint folders with such a log, naming each model from its checkpoint's
metadata (read from the safetensors header as JSON, so no torch), for ``harness plot`` and ``harness report``.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths

CURVE = "train_log.jsonl"
CHECKPOINT = "checkpoint.safetensors"  # harness.training.checkpoint.FILENAME (that module imports torch)
ENDS = 10  # steps averaged for the first and last loss of the table


def append_curve(folder: Path, steps: list[dict]) -> None:
    """The training loss of each step, appended beside the checkpoint before it is saved."""
    from harness.paths import append_event

    folder.mkdir(parents=True, exist_ok=True)
    for entry in steps:
        append_event(folder / CURVE, entry)


def training_curve(folder: Path) -> list[dict]:
    """Every step's loss of the model trained in ``folder``, in step order (the last record of a step wins);
    lines that are not a step with a finite loss (torn by a kill) are skipped."""
    path = Path(folder) / CURVE
    if not path.is_file():
        return []
    by_step = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            step, loss = int(entry["step"]), float(entry["loss"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if math.isfinite(loss):
            by_step[step] = {**entry, "step": step, "loss": loss}
    return [by_step[k] for k in sorted(by_step)]


def checkpoint_meta(folder: Path) -> dict:
    """The metadata of the checkpoint in ``folder`` from the safetensors header ({} when missing or unreadable)."""
    try:
        with open(Path(folder) / CHECKPOINT, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100_000_000:
                return {}
            raw = json.loads(f.read(size)).get("__metadata__") or {}
        return {k: json.loads(v) for k, v in raw.items() if k not in ("step", "sha256")}
    except (OSError, ValueError, struct.error, AttributeError, TypeError):
        return {}


def training_seconds(curve: list[dict]) -> float | None:
    """The training time the log records: the seconds of each training process, summed over resumptions
    (a step whose ``seconds`` is below the step before it starts a new process); None without ``seconds``."""
    total, last = 0.0, None
    for entry in curve:
        seconds = entry.get("seconds")
        if not isinstance(seconds, (int, float)):
            return None
        if last is not None and seconds < last:
            total += last
        last = float(seconds)
    return None if last is None else round(total + last, 3)


@dataclass
class TrainedModel:
    name: str
    fingerprint: str
    folder: Path
    curve: list[dict]
    recipe: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.fingerprint}"


def trained_models(root: Path | None = None) -> list[TrainedModel]:
    """Every checkpoint folder under ``root`` (default ``$HARNESS_HOME/checkpoints``) with a training log
    holding at least one step, by model name then fingerprint."""
    root = paths.home() / "checkpoints" if root is None else root
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        curve = training_curve(folder) if folder.is_dir() else []
        if not curve:
            continue
        meta = checkpoint_meta(folder)
        described = meta.get("model") if isinstance(meta.get("model"), dict) else {}
        stem, _, tail = folder.name.rpartition("-")
        name = str(described.get("name") or stem or folder.name)
        fingerprint = str(meta.get("fingerprint") or described.get("fingerprint") or tail)
        recipe = described.get("recipe") if isinstance(described.get("recipe"), dict) else {}
        found.append(TrainedModel(name, fingerprint, folder, curve, recipe))
    return sorted(found, key=lambda m: (m.name, m.fingerprint))


def recipe_changes(recipe: dict) -> dict:
    """The fields of a trained model's recipe that differ from the catalog recipe of its name (the ``--set``
    values it was trained with); {} when that recipe is not in the catalog."""
    from harness import registry
    from harness.errors import HarnessError

    try:
        base = registry.RECIPES.get(str(recipe.get("name")))
    except HarnessError:
        return {}
    import dataclasses

    plain = json.loads(json.dumps(dataclasses.asdict(base)))
    return {k: v for k, v in recipe.items() if k not in ("name", "description") and k in plain and plain[k] != v}


def summary_rows(models: list[TrainedModel]) -> list[dict]:
    """One row per trained model: steps logged, the mean loss of its first and last ``ENDS`` steps, seconds."""
    rows = []
    for model in models:
        losses = [entry["loss"] for entry in model.curve]
        rows.append({
            "model": model.name,
            "fingerprint": model.fingerprint,
            "steps": model.curve[-1]["step"],
            "first_loss": sum(losses[:ENDS]) / len(losses[:ENDS]),
            "last_loss": sum(losses[-ENDS:]) / len(losses[-ENDS:]),
            "train_seconds": training_seconds(model.curve),
        })  # fmt: skip
    return rows
