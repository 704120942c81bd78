"""Pictures from the results database (matplotlib, PNG): few-shot curves and the ablation bars.

Both draw the same numbers `harness table` prints: the mean over seeds, with a 95% CI band or bar
pooled over every sample of every seed (the leaderboard's interval).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harness import conditions
from harness.errors import HarnessError
from harness.tables import condition_suffix, leaderboard

# How each image condition is drawn: the controls dashed or hatched, real images plain.
_STYLE = {"black": "--", "shuffled": ":", "caption": "-."}
_HATCH = {"black": "//", "shuffled": "..", "caption": "xx"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _filename(kind: str, what: str, limit: int) -> str:
    """e.g. 'fewshot-emoji-open-2-way-first100.png': task labels carry spaces and '+'."""
    name = f"{kind}-{what}" + (f"-first{limit}" if limit else "")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name) + ".png"


def _with_labels(board: pd.DataFrame) -> pd.DataFrame:
    """The model name, with its fingerprint where one name covers differently trained models (as in
    the tables), so two such models are never drawn as one line or one bar."""
    several = board.groupby("model")["model_family"].transform("nunique") > 1
    label = board["model"].where(~several, board["model"] + " [" + board["model_family"].str[:8] + "]")
    return board.assign(model=label)


def fewshot_curves(board: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per task: score vs shots, a line per model and image condition, CI bands."""
    plt = _pyplot()
    written = []
    for (task, limit), rows in board.groupby(["task", "limit"]):
        if rows["shots"].nunique() < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for (model, images), line in rows.groupby(["model", "images"]):
            line = line.sort_values("shots")
            label = model + condition_suffix(images)
            ax.plot(line["shots"], line["mean"], marker="o", linestyle=_STYLE.get(images, "-"), label=label)
            ax.fill_between(line["shots"], line["ci95_low"], line["ci95_high"], alpha=0.15)
        ax.set(xlabel="shots", ylabel=rows["metric"].iloc[0], title=f"{task}" + (f" (first {limit})" if limit else ""))
        ax.set_xticks(sorted(rows["shots"].unique()))
        ax.legend(fontsize=7)
        path = out / _filename("fewshot", task, limit)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def ablation_bars(board: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per task and shot count: recipes side by side, a bar per image condition, CI whiskers."""
    plt = _pyplot()
    written = []
    for (task, shots, limit), rows in board.groupby(["task", "shots", "limit"]):
        models = sorted(rows["model"].unique())
        shown = [c for c in conditions.LABELS if c in set(rows["images"])]
        fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.55 * len(shown) * len(models)), 4))
        width = 0.8 / len(shown)
        for k, images in enumerate(shown):
            part = rows[rows["images"] == images].set_index("model").reindex(models)
            err = [part["mean"] - part["ci95_low"], part["ci95_high"] - part["mean"]]
            xs = [i + (k - (len(shown) - 1) / 2) * width for i in range(len(models))]
            hatch = _HATCH.get(images)
            ax.bar(xs, part["mean"], width, yerr=err, capsize=3, label=conditions.label(images), hatch=hatch)
        ax.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=8)
        ax.set(ylabel=rows["metric"].iloc[0], title=f"{task} {shots}-shot" + (f" (first {limit})" if limit else ""))
        ax.legend(fontsize=7)
        path = out / _filename("ablation", f"{task}-{shots}shot", limit)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def naming_curves(board: pd.DataFrame, frame: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per naming task on generated episodes: score vs inner shots (a line per model and ways)
    and score vs ways (a line per model and inner shots), the two axes of Frozen's miniImageNet table."""
    plt = _pyplot()
    naming = frame.dropna(subset=["ways"]).drop_duplicates("task").set_index("task")
    if "answer" not in naming:  # a frame from before naming by ranking
        naming = naming.assign(answer="generate")
    if naming.empty:
        return []
    rows = board[board["task"].isin(naming.index)].copy()
    for key in ("task_name", "ways", "repeats", "induction", "answer"):
        rows[key] = rows["task"].map(naming[key])
    rows["ways"] = rows["ways"].astype(int)
    written = []
    for (task, limit), part in rows.groupby(["task_name", "limit"]):
        panels = [(x, line) for x, line in (("shots", "ways"), ("ways", "shots")) if part[x].nunique() > 1]
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
        for ax, (x, line_key) in zip(axes[0], panels):
            keys = ["model", "images", line_key, "repeats", "induction", "answer"]
            for (model, images, value, repeats, induction, answer), line in part.groupby(keys):
                line = line.sort_values(x)
                label = f"{model}, {value}-{'way' if line_key == 'ways' else 'shot'}"
                label += (f", x{repeats}" if repeats > 1 else "") + (", +induction" if induction else "")
                label += ", ranked" if answer == "rank" else ""
                label += condition_suffix(images)
                ax.plot(line[x], line["mean"], marker="o", linestyle=_STYLE.get(images, "-"), label=label)
                ax.fill_between(line[x], line["ci95_low"], line["ci95_high"], alpha=0.15)
            ax.set_xticks(sorted(part[x].unique()))
            ax.set(xlabel="inner shots" if x == "shots" else "ways", ylabel=part["metric"].iloc[0])
            ax.legend(fontsize=7)
        fig.suptitle(f"{task}: naming" + (f" (first {limit})" if limit else ""))
        path = out / _filename("naming", task, limit)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def plot_all(frame: pd.DataFrame, out: Path) -> list[Path]:
    if frame.empty:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    out.mkdir(parents=True, exist_ok=True)
    board = _with_labels(leaderboard(frame))
    return fewshot_curves(board, out) + ablation_bars(board, out) + naming_curves(board, frame, out)
