"""Pictures from the results database (matplotlib, PNG): few-shot curves and the ablation bars.

Both draw the same numbers `harness table` prints: the mean over seeds, with a 95% CI band or bar
pooled over every sample of every seed (the leaderboard's interval).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.errors import HarnessError
from harness.tables import leaderboard


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


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
            label = model + (" (images blacked out)" if images == "black" else "")
            ax.plot(line["shots"], line["mean"], marker="o", linestyle="--" if images == "black" else "-", label=label)
            ax.fill_between(line["shots"], line["ci95_low"], line["ci95_high"], alpha=0.15)
        ax.set(xlabel="shots", ylabel=rows["metric"].iloc[0], title=f"{task}" + (f" (first {limit})" if limit else ""))
        ax.set_xticks(sorted(rows["shots"].unique()))
        ax.legend(fontsize=7)
        path = out / f"fewshot-{task}{f'-first{limit}' if limit else ''}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def ablation_bars(board: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per task and shot count: recipes side by side, real vs blacked-out images, CI whiskers."""
    plt = _pyplot()
    written = []
    for (task, shots, limit), rows in board.groupby(["task", "shots", "limit"]):
        models = sorted(rows["model"].unique())
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(models), 4))
        width = 0.38
        for offset, images in ((-width / 2, "real"), (width / 2, "black")):
            part = rows[rows["images"] == images].set_index("model").reindex(models)
            err = [part["mean"] - part["ci95_low"], part["ci95_high"] - part["mean"]]
            xs = [i + offset for i in range(len(models))]
            label = "real images" if images == "real" else "images blacked out"
            ax.bar(xs, part["mean"], width, yerr=err, capsize=3, label=label, hatch="//" if images == "black" else None)
        ax.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=8)
        ax.set(ylabel=rows["metric"].iloc[0], title=f"{task} {shots}-shot" + (f" (first {limit})" if limit else ""))
        ax.legend(fontsize=7)
        path = out / f"ablation-{task}-{shots}shot{f'-first{limit}' if limit else ''}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def plot_all(frame: pd.DataFrame, out: Path) -> list[Path]:
    if frame.empty:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    out.mkdir(parents=True, exist_ok=True)
    board = leaderboard(frame)
    return fewshot_curves(board, out) + ablation_bars(board, out)
