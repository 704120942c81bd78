"""Two tables of results/frozen-mini.md that the harness's own commands do not print, from the run records alone:

1. ``spread``: each model's score in every test cell per training seed (a model trained 3 times with seeds
   0, 1 and 2), with the mean and the range (max - min) over the seeds: how much a verdict could move with
   another training run.
2. ``naming``: each naming cell of the frozen recipe (a task label and inner shots, per training seed pooled):
   real, blacked-out and shuffled images, the text ceiling (every image given as its caption), the no-model
   baseline (the last shot's name), and the prefix as a fraction of the ceiling (real / ceiling, where the
   ceiling is above 0). Identical-image cells are the rows whose label says so.

    HARNESS_HOME=<home> python results/analysis/fair_tables.py spread|naming
"""

from __future__ import annotations

import sys

import pandas as pd

from harness.results.database import ResultsDB


def _frame() -> pd.DataFrame:
    frame = ResultsDB(readonly=True).frame()
    return frame[frame["split"] == "test"]


def _fmt(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.1f}"


def spread() -> None:
    frame = _frame()
    frame = frame[frame["train_seed"].notna()]
    print("| task | shots | model | images | seed 0 | seed 1 | seed 2 | mean | range |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = ["task", "shots", "model", "images"]
    for (task, shots, model, images), group in sorted(frame.groupby(keys), key=lambda kv: kv[0]):
        by_seed = group.groupby("train_seed")["score"].mean()
        if len(by_seed) < 2:
            continue
        cells = [_fmt(by_seed.get(float(s), float("nan"))) for s in (0, 1, 2)]
        print(f"| {task} | {shots} | {model} | {images} | " + " | ".join(cells)
              + f" | {_fmt(by_seed.mean())} | {_fmt(by_seed.max() - by_seed.min())} |")  # fmt: skip


def naming() -> None:
    frame = _frame()
    frame = frame[(frame["kind"] == "naming") & (frame["recipe"] == "frozen")]
    print("| task | inner shots | model | trained | real | blacked out | shuffled | ceiling (text) | last shot's name "
          "| real / ceiling |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (task, shots, model), group in sorted(frame.groupby(["task", "shots", "model"]), key=lambda kv: kv[0]):
        means = group.groupby("images")["score"].mean()
        copy = [
            b.get("copy_last") for b in group[group["images"] == "real"]["baselines"] if b.get("copy_last") is not None
        ]
        real, ceiling = means.get("real", float("nan")), means.get("caption", float("nan"))
        fraction = real / ceiling if ceiling and not pd.isna(ceiling) and not pd.isna(real) else float("nan")
        trained = group["train_seed"].nunique()
        print(f"| {task} | {shots} | {model} | {trained} | {_fmt(real)} | {_fmt(means.get('black', float('nan')))} | "
              f"{_fmt(means.get('shuffled', float('nan')))} | {_fmt(ceiling)} | "
              f"{_fmt(sum(copy) / len(copy) if copy else float('nan'))} | "
              f"{'' if pd.isna(fraction) else f'{fraction:.2f}'} |")  # fmt: skip


if __name__ == "__main__":
    {"spread": spread, "naming": naming}[sys.argv[1] if len(sys.argv) > 1 else "spread"]()
