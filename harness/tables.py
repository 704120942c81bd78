"""Tables from the results database: the comparison table and the leaderboard export.

Cells are mean ± std over seeds with the seed count; runs made with --limit are partial and
marked with * wherever they show. Published numbers are extra rows, labelled, never mixed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import HarnessError
from harness.kinds.naming import naming_label

# The leaderboard's columns, in this order (documented in docs/files-and-records.md; append new ones at the end).
LEADERBOARD_COLUMNS = [
    "task", "shots", "model", "lm", "recipe", "images", "metric", "mean", "std", "ci95_low", "ci95_high",
    "n_samples", "seeds", "n_seeds", "partial", "model_fingerprints", "task_fingerprint", "harness_version", "date",
    "limit", "skipped",
]  # fmt: skip


def _column(task, shots, limit) -> str:
    return f"{task} {shots}-shot" + (f" (first {limit})" if limit else "")


def _labels(frame: pd.DataFrame) -> pd.Series:
    """Row labels: the model name, plus its fingerprint where one name covers differently trained models
    (a recipe changed with --set), so two such models are never averaged together."""
    several = frame.groupby("model")["model_fingerprint"].transform("nunique") > 1
    label = frame["model"].where(~several, frame["model"] + " [" + frame["model_fingerprint"].str[:8] + "]")
    return label + np.where(frame["images"] == "black", " (images blacked out)", "")


def _optional_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns newer than some records: a run from before skip counting skipped nothing."""
    return frame if "skipped" in frame else frame.assign(skipped=0)


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    frame = _optional_columns(frame)
    keys = ["model", "model_fingerprint", "lm", "recipe", "images", "task", "shots", "limit", "metric"]
    return (
        frame.groupby(keys, dropna=False)
        .agg(
            mean=("score", "mean"),
            std=("score", "std"),
            n_seeds=("seed", "nunique"),
            partial=("partial", "max"),
            skipped=("skipped", "sum"),
        )  # fmt: skip
        .reset_index()
    )


def comparison(frame: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows = model (LM x recipe) and image condition; columns = task x shots; cells 'mean ± std (n)'."""
    if frame.empty:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    cells = _cells(frame)

    def text(row) -> str:
        std = "" if pd.isna(row["std"]) else f" ± {row['std']:.2f}"
        skipped = f" [{int(row['skipped'])} skipped]" if row["skipped"] else ""
        return f"{row['mean']:.2f}{std} (n={row['n_seeds']}){'*' if row['partial'] else ''}{skipped}"

    cells["cell"] = cells.apply(text, axis=1)
    cells["column"] = [_column(t, s, n) for t, s, n in zip(cells["task"], cells["shots"], cells["limit"])]
    cells["row"] = _labels(cells)
    table = cells.pivot_table(index="row", columns="column", values="cell", aggfunc="first").fillna("")
    if published is not None and not published.empty:
        from harness.published import setting_differences

        ours = dict(zip(cells["column"], cells["lm"]))
        extra = {}
        for _, p in published.iterrows():
            # A naming row's shot count is its inner shots, and its task label names its setting, as ours do.
            shots = p["shots"] if pd.notna(p["shots"]) else p["inner_shots"]
            task = p["task"]
            if pd.notna(p["ways"]):
                task = naming_label(task, int(p["ways"]), induction=bool(pd.notna(p["induction"]) and p["induction"]))
            column = f"{task} {int(shots)}-shot" if pd.notna(shots) else None
            if column in table.columns:
                label = f"published: {p['model']} ({p['source']}{', secondary' if p['secondary'] else ''})"
                differs = setting_differences(p, task=p["task"], shots=int(shots), lm=ours[column])
                note = f" [differs: {'; '.join(differs)}]" if differs else ""
                extra.setdefault(label, {})[column] = f"{p['score']:g}{note}"
        if extra:
            table = pd.concat([table, pd.DataFrame.from_dict(extra, orient="index")]).fillna("")
    table.index.name = "model"
    return table


def _sample_scores(run_dir: str) -> dict[str, float]:
    path = Path(run_dir) / "samples.jsonl"
    samples = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {s["id"]: s["score"] for s in samples if "skipped" not in s}


def _samples(run_dir: str) -> list[float]:
    return list(_sample_scores(run_dir).values())


def compare(frame: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Deltas against ``baseline`` (its real-image runs) per task x shots, each with a paired bootstrap
    95% CI over the same (seed, sample id) pairs; '*' where the interval excludes zero."""
    if frame.empty or baseline not in set(frame["model"]):
        raise HarnessError(f"no finished runs of baseline model '{baseline}' in the results database")
    frame = frame.assign(row=_labels(frame))
    base = frame[(frame["model"] == baseline) & (frame["images"] == "real")]
    if base["model_fingerprint"].nunique() > 1:
        raise HarnessError(
            f"baseline '{baseline}' names {base['model_fingerprint'].nunique()} differently trained models"
        )
    cells: dict[str, dict[str, str]] = {}
    for (task, shots, limit), base_runs in base.groupby(["task", "shots", "limit"]):
        reference = {
            (seed, i): v
            for seed, d in zip(base_runs["seed"], base_runs["run_dir"])
            for i, v in _sample_scores(d).items()
        }
        column = _column(task, shots, limit)
        others = frame[(frame["task"] == task) & (frame["shots"] == shots) & (frame["limit"] == limit)]
        for row, runs in others.groupby("row"):
            if row == base["row"].iloc[0]:
                continue
            theirs = {
                (seed, i): v for seed, d in zip(runs["seed"], runs["run_dir"]) for i, v in _sample_scores(d).items()
            }
            pairs = sorted(reference.keys() & theirs.keys())
            if not pairs:
                continue
            delta, low, high = stats.paired_bootstrap_ci([reference[k] for k in pairs], [theirs[k] for k in pairs])
            mark = "*" if low > 0 or high < 0 else ""
            cells.setdefault(row, {})[column] = (
                f"{100 * delta:+.2f} [{100 * low:+.1f}, {100 * high:+.1f}]{mark} (n={len(pairs)})"
            )
    if not cells:
        raise HarnessError(f"no runs share a task, shots and samples with baseline '{baseline}'")
    table = pd.DataFrame.from_dict(cells, orient="index").fillna("")
    table.index.name = f"Δ vs {baseline}"
    return table


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, shots, model, images): mean and std over seeds, a 95% CI pooled over samples."""
    if frame.empty:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    frame = _optional_columns(frame)
    out = []
    keys = ["task", "shots", "limit", "model", "model_fingerprint", "lm", "recipe", "images", "metric"]
    for key, group in frame.groupby(keys, dropna=False):
        scores = [s for run_dir in group["run_dir"] for s in _samples(run_dir)]
        low, high = stats.bootstrap_ci(scores)
        task, shots, limit, model, _, lm, recipe, images, metric = key
        out.append({
            "task": task, "shots": shots, "limit": limit, "model": model, "lm": lm, "recipe": recipe, "images": images,
            "metric": metric, "mean": round(group["score"].mean(), 2),
            "std": round(group["score"].std(), 2) if len(group) > 1 else float("nan"),
            "ci95_low": round(100 * low, 2), "ci95_high": round(100 * high, 2), "n_samples": len(scores),
            "seeds": " ".join(str(s) for s in sorted(group["seed"].unique())), "n_seeds": group["seed"].nunique(),
            "partial": bool(group["partial"].max()),
            "model_fingerprints": " ".join(sorted(group["model_fingerprint"].unique())),
            "task_fingerprint": " ".join(sorted(group["task_fingerprint"].dropna().unique())),
            "harness_version": " ".join(sorted(group["harness_version"].unique())),
            "date": max(group["created"]), "skipped": int(group["skipped"].sum()),
        })  # fmt: skip
    return pd.DataFrame(out, columns=LEADERBOARD_COLUMNS).sort_values(["task", "shots", "limit", "model", "images"])
