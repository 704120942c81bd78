"""Task labels that keep one cell one task fingerprint.

Every table names a task by its label (``easyvqa``, ``emoji-open 5-way``). Runs of one label under other
task settings (``--task-set prompt=...``) or on other data (another ``HARNESS_MINIIMAGENET_DIR``) have other
task fingerprints: their labels say what differs, found by comparing the runs' ``config.json``
(``task_config``, ``data_version``), so they are other rows and columns, never averaged together.

A run made with the task as it is defined now keeps the plain label; the others get the fields in which
they differ from it, as ``--task-set`` writes them: ``easyvqa [prompt='Q: {question} A:']``. Runs that
differ only in their data get ``[data <version>]`` (older records, which do not say their data's version,
``[task <fingerprint>]``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd


def _flat(config: dict, prefix: str = "") -> dict[str, str]:
    """A task config's fields as ``--task-set`` names them (a kind option by its own name), values as text."""
    out = {}
    for key, value in config.items():
        if key == "options" and isinstance(value, dict):
            out.update(_flat(value))
        else:
            out[f"{prefix}{key}"] = repr(value)
    return out


def _run_config(run_dir: str) -> dict:
    from harness.errors import HarnessError
    from harness.results.rundir import RunDir

    try:
        return RunDir(Path(run_dir)).config()
    except HarnessError:
        return {}


def _defined(name: str) -> dict[str, str] | None:
    """The task ``name`` as it is defined now, flattened; None when it is not (any more)."""
    from harness import registry
    from harness.errors import HarnessError

    try:
        return _flat(dataclasses.asdict(registry.TASKS.get(name)))
    except HarnessError:
        return None


def _cell_fields(runs: pd.DataFrame) -> set[str]:
    """The task options that are cell fields of the runs' kind (``TaskKind.cell_options``)."""
    from harness.kinds.base import KINDS

    kinds = set(runs["kind"]) if "kind" in runs else set()
    return {name for kind in kinds if kind in KINDS.items for name in KINDS.items[kind].cell_options()}


def _short(version: str) -> str:
    """A data version shortened: its digest (after the last ':') to 8 characters."""
    name, sep, digest = version.rpartition(":")
    return f"{name}{sep}{digest[:8]}"


def _labels_of_group(label: str, name: str, runs: pd.DataFrame) -> dict[str, str]:
    """Label by task fingerprint for the runs of one label that hold several fingerprints."""
    configs, data = {}, {}
    for fingerprint, run_dir in zip(runs["task_fingerprint"], runs["run_dir"]):
        if fingerprint in configs and data.get(fingerprint):
            continue
        config = _run_config(run_dir)
        if not configs.get(fingerprint):
            configs[fingerprint] = _flat(config.get("task_config") or {})
        data[fingerprint] = data.get(fingerprint) or config.get("data_version")
    # A field differs where two runs that record it hold other values; a cell field of the task's kind (naming's
    # inner shots, ways, induction) is not named: the shots column and the kind's own label text say it.
    cell = _cell_fields(runs)
    fields = sorted({k for c in configs.values() for k in c} - cell)
    differing = [k for k in fields if len({c[k] for c in configs.values() if k in c}) > 1]
    defined = _defined(name) if differing else None
    named = {}
    for fingerprint, config in configs.items():
        parts = [f"{k}={config[k]}" for k in differing
                 if k in config and (defined is None or config[k] != defined.get(k))]  # fmt: skip
        named[fingerprint] = label + (f" [{', '.join(parts)}]" if parts else "")
    # Runs left with one label but other fingerprints differ in their data.
    out = {}
    cells = {f: (t, tuple(configs[f].get(k) for k in sorted(cell))) for f, t in named.items()}
    for fingerprint, text in named.items():
        same = [f for f, key in cells.items() if key == cells[fingerprint]]
        if len(same) > 1:
            version = data.get(fingerprint)
            text += f" [data {_short(version)}]" if version else f" [task {str(fingerprint)[:8]}]"
        out[fingerprint] = text
    return out


def distinguish(frame: pd.DataFrame) -> list[str]:
    """Each run's task label, with what sets it apart where runs of its label have other task fingerprints."""
    labels = list(frame["task"])
    if frame.empty or "task_fingerprint" not in frame:
        return labels
    fingerprints = frame["task_fingerprint"].fillna("")
    # A dev run and a test run of one task differ in their split (their labels say "[dev]"), nothing else to name.
    split = frame["split"] if "split" in frame else pd.Series("test", index=frame.index)
    grouped = frame.assign(task_fingerprint=fingerprints, split_of_run=split).groupby(
        ["task", "split_of_run"], sort=False
    )
    for (label, _), runs in grouped:
        if runs["task_fingerprint"].nunique() < 2:
            continue
        named = _labels_of_group(label, runs["task_name"].iloc[0], runs)
        for i, fingerprint in zip(runs.index, runs["task_fingerprint"]):
            labels[frame.index.get_loc(i)] = named[fingerprint]
    return labels
