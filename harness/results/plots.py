"""Pictures from the results database (matplotlib, PNG): few-shot curves and the ablation bars; and the
training-loss curves of the trained models (harness.training.curves).

The score plots draw the same numbers `harness table` prints: the mean over seeds, with a 95% CI band or bar
pooled over every sample of every seed (the leaderboard's interval).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harness import conditions
from harness.errors import HarnessError
from harness.results.tables import condition_suffix, leaderboard

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


def setting_curves(board: pd.DataFrame, frame: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per task whose kind has whole-number cell settings (naming's ways): score vs shots (a line per model
    and the other settings) and score vs each such setting that varies (a line per model and shots); for naming on
    generated episodes, the two axes of Frozen's miniImageNet table. Each line is labelled as the kind labels cells."""
    from harness.kinds.base import KINDS, cell_settings

    plt = _pyplot()
    if "cell_settings" not in frame:
        return []
    declared = cell_settings()
    numbers = {n for n, s in declared.items() if s.type is int}
    runs = frame[[bool(numbers & set(c)) for c in frame["cell_settings"]]].drop_duplicates("task").set_index("task")
    rows = board[board["task"].isin(runs.index)].copy()
    if rows.empty:
        return []
    settings = pd.DataFrame(list(rows["task"].map(runs["cell_settings"])), index=rows.index)
    names = [n for n in declared if n in settings] + sorted(set(settings) - set(declared))
    rows = rows.join(settings[names]).assign(task_name=rows["task"].map(runs["task_name"]),
                                             kind=rows["task"].map(runs["kind"]))  # fmt: skip
    written = []
    for (task, limit), part in rows.groupby(["task_name", "limit"]):
        kind = KINDS.items.get(part["kind"].iloc[0])
        axes = [x for x in ["shots", *(n for n in names if n in numbers)] if part[x].nunique() > 1]
        if not axes:
            continue
        fig, panels = plt.subplots(1, len(axes), figsize=(6 * len(axes), 4), squeeze=False)
        for ax, x in zip(panels[0], axes):
            keys = ["model", "images", *(k for k in ["shots", *names] if k != x)]
            for key, line in part.groupby(keys, dropna=False):
                line, given = line.sort_values(x), dict(zip(keys, key))
                texts = [f"{given['shots']}-shot"] if x != "shots" else []
                texts += [declared[n].text(given[n]).strip() for n in names if n != x and n in declared
                          and pd.notna(given[n])]  # fmt: skip
                label = ", ".join([str(given["model"]), *(t for t in texts if t)]) + condition_suffix(given["images"])
                ax.plot(line[x], line["mean"], marker="o", linestyle=_STYLE.get(given["images"], "-"), label=label)
                ax.fill_between(line[x], line["ci95_low"], line["ci95_high"], alpha=0.15)
            ax.set_xticks(sorted(part[x].unique()))
            shots = "inner shots" if kind is not None and kind.shots_option else "shots"
            ax.set(xlabel=shots if x == "shots" else x, ylabel=part["metric"].iloc[0])
            ax.legend(fontsize=7)
        what = kind.name if kind is not None else "settings"
        fig.suptitle(f"{task}: {what}" + (f" (first {limit})" if limit else ""))
        path = out / _filename(what, task, limit)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _smoothed(values: list[float], window: int) -> list[float]:
    """The trailing moving average over ``window`` steps (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def _window(n: int) -> int:
    """Steps averaged: a twentieth of the curve, at least 5 and at most 100 (never more than the curve)."""
    return max(1, min(n, max(5, min(100, round(n / 20)))))


def loss_curves(models: list, out: Path, each: bool = True) -> list[Path]:
    """Training loss vs step: one PNG per trained model (``each``; every step, and the moving average), and
    ``loss-curves.png`` with every model's moving average (labelled by fingerprint where a name has several)."""
    import textwrap

    from harness.training.curves import recipe_changes

    if not models:
        return []
    plt = _pyplot()
    written = []
    names = [m.name for m in models]
    for model in models if each else []:
        steps, losses = [e["step"] for e in model.curve], [e["loss"] for e in model.curve]
        window = _window(len(losses))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(steps, losses, alpha=0.35, linewidth=0.8, label="each step")
        ax.plot(
            steps, _smoothed(losses, window), linewidth=1.6, label=f"moving average ({window} step{'s' * (window > 1)})"
        )
        changes = ", ".join(f"{k}={v}" for k, v in sorted(recipe_changes(model.recipe).items()))
        title = f"{model.name} [{model.fingerprint}]" + (f"\n{textwrap.shorten(changes, 160)}" if changes else "")
        ax.set_title(title, fontsize=8)
        ax.set(xlabel="step", ylabel="training loss")
        ax.legend(fontsize=7)
        path = out / _filename("loss", model.label, 0)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in models:
        losses = [e["loss"] for e in model.curve]
        label = model.name + (f" [{model.fingerprint}]" if names.count(model.name) > 1 else "")
        ax.plot([e["step"] for e in model.curve], _smoothed(losses, _window(len(losses))), label=label)
    ax.set(xlabel="step", ylabel="training loss (moving average)", title="training loss")
    ax.legend(fontsize=7)
    path = out / "loss-curves.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [*written, path]


def plot_all(frame: pd.DataFrame, out: Path, losses: bool = True) -> list[Path]:
    """Every plot of the results, and (``losses``) the training-loss curves of every trained model: with
    trained models but no runs yet, the loss curves alone."""
    from harness.training.curves import trained_models

    models = trained_models() if losses else []
    if frame.empty and not models:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if not frame.empty:
        board = _with_labels(leaderboard(frame))
        written = fewshot_curves(board, out) + ablation_bars(board, out) + setting_curves(board, frame, out)
    return written + loss_curves(models, out)
