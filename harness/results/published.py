"""Published numbers (``baselines/published.csv``) and the ways their settings differ from our cells.

The CSV is data: one row per number a paper printed, with its source and setting. A table that puts
one beside ours prints ``setting_differences`` so that no reader takes the two as like for like.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from harness import registry
from harness.errors import HarnessError

PUBLISHED_CSV = Path(__file__).resolve().parents[1] / "catalog" / "published.csv"
COLUMNS = ("source", "model", "recipe", "task", "split", "shots", "ways", "inner_shots", "induction",
           "metric", "score", "lm", "trained", "setting", "secondary")  # fmt: skip
REQUIRED = ("source", "model", "task", "metric", "score")
METRICS = ("vqa_accuracy", "naming_accuracy", "CIDEr", "BLEU-4", "METEOR", "SPICE")
INT_COLUMNS = ("shots", "ways", "inner_shots")
DTYPES = {**{c: "str" for c in COLUMNS}, **{c: "Int64" for c in INT_COLUMNS},
          "induction": "boolean", "score": "float64", "secondary": "bool"}  # fmt: skip
# Two rows with the same key would print twice beside one cell of ours.
KEY = ("source", "model", "task", "split", "shots", "ways", "inner_shots", "induction", "metric")
_BOOLS = {"true": True, "false": False}


def load_published(path: Path | None = None) -> pd.DataFrame:
    """The published numbers, typed and checked; a bad file is a one-line HarnessError naming the cell."""
    path = path or PUBLISHED_CSV
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            lines = [(reader.line_num, cells) for cells in reader if cells]
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file") from None
    except (csv.Error, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: not a readable CSV ({err})") from None
    header = tuple(lines[0][1]) if lines else ()
    if header != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        what = (f"missing column '{missing[0]}'" if missing else f"unknown column '{extra[0]}'" if extra
                else "columns out of order")  # fmt: skip
        raise HarnessError(f"{path}: {what}; expected {','.join(COLUMNS)}")
    if len(lines) == 1:
        raise HarnessError(f"{path}: no rows")
    typed: dict[str, list[object]] = {c: [] for c in COLUMNS}
    for n, cells in lines[1:]:
        if len(cells) != len(COLUMNS):
            raise HarnessError(f"{path}:{n}: {len(cells)} fields, expected {len(COLUMNS)}")
        for column, value in zip(COLUMNS, cells):
            try:
                typed[column].append(_parse(column, value))
            except ValueError as err:
                raise HarnessError(f"{path}:{n}: column '{column}' {err}, got {value!r}") from None
    table = pd.DataFrame({c: pd.Series(values, dtype=DTYPES[c]) for c, values in typed.items()})
    duplicated = table.duplicated(subset=list(KEY))
    if duplicated.any():
        line = lines[int(duplicated.idxmax()) + 1][0]
        raise HarnessError(f"{path}:{line}: repeats an earlier row's {', '.join(KEY)}")
    return table


def _parse(column: str, value: str) -> object:
    """One cell's typed value; ValueError saying what the column needs."""
    if column in REQUIRED and not value:
        raise ValueError("must not be empty")
    if column in INT_COLUMNS:
        if not value:
            return pd.NA
        if not value.isdigit():
            raise ValueError("must be a whole number or empty")
        return int(value)
    if column == "induction":
        if not value:
            return pd.NA
        if value not in _BOOLS:
            raise ValueError("must be true, false or empty")
        return _BOOLS[value]
    if column == "secondary":
        if value not in _BOOLS:
            raise ValueError("must be true or false")
        return _BOOLS[value]
    if column == "score":
        try:
            score = float(value)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(score) or score < 0:
            raise ValueError("must be a finite number >= 0")
        return score
    if column == "metric" and value not in METRICS:
        raise ValueError(f"must be one of {', '.join(METRICS)}")
    if column == "recipe" and value and value not in registry.RECIPES:
        raise ValueError(f"must be empty or a recipe ({', '.join(registry.RECIPES.names())})")
    if column == "task" and value not in registry.TASKS:
        raise ValueError("must be a task in tasks/")
    return value


def setting_differences(row: Mapping[str, Any] | pd.Series, *, task: str, shots: int, lm: str) -> list[str]:
    """Short phrases for how a published row's setting differs from our cell (task, shots, lm).

    e.g. ["vqav2 val vs easyvqa", "7B LM vs smollm2-135m"]. Our LMs are never the paper's, so a
    different LM string is always reported, even where the sizes happen to agree.
    """
    differences = []
    their_task, their_split = str(row["task"]), _text(row["split"])
    if their_task != task.removesuffix("-hub"):  # a hub copy holds the same split as the official files
        differences.append(" ".join(filter(None, (their_task, their_split))) + f" vs {task}")
    elif their_split and (our_split := _our_split(task)) and our_split not in their_split.split():
        differences.append(f"{their_split} vs {our_split}")
    if not pd.isna(row["shots"]) and int(row["shots"]) != shots:
        differences.append(f"{int(row['shots'])}-shot vs {shots}-shot")
    their_lm = _text(row["lm"])
    if their_lm and their_lm.lower() != lm.lower():
        differences.append(f"{their_lm.split(' (')[0]} LM vs {lm}")
    return differences


def _text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


def _our_split(task: str) -> str | None:
    return registry.TASKS.get(task).split if task in registry.TASKS else None
