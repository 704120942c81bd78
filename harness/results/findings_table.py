"""The findings table: each finding of a findings file (``harness.results.findings``) measured on the runs of the results
database, one row per pair of cells it compares (or per cell, for an absolute claim).

A cell is every run of one model version, task (and its settings), shots, image condition and --limit, over its
seeds. Two cells are compared on the items they share, keyed by (training and few-shot seed, item id): the effect is
the mean of per-seed mean differences B - A in points, its 95% CI a paired bootstrap over items (two-level, seeds
then items, where several seeds are shared), its p-value a paired test (exact McNemar for 0/1 scores, else a
sign-flip permutation test), Holm-adjusted over every p-value of the table. Reads run records and samples only.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

from harness import conditions
from harness.kinds.base import KINDS, cell_label, cell_settings, ordered_settings
from harness.metrics import stats
from harness.results.findings import IDENTITY, Findings, FindingSpec, Selector, verdict

COLUMNS = ["finding", "claim", "cells", "n", "n_seeds", "effect", "ci95_low", "ci95_high", "p_value", "test",
           "p_holm", "verdict"]  # fmt: skip
_SHORT = {"real": "real", "black": "blacked out", "shuffled": "shuffled", "caption": "as text"}


def _variant(run_dir: str) -> str:
    """What else sets a run's task apart (other --task-set fields, other data): a digest of its task config but
    the options that are cell fields of their own (any kind's ``cell_options``), and its data version."""
    from harness.errors import HarnessError
    from harness.results.rundir import RunDir

    try:
        config = RunDir(Path(run_dir)).config()
    except HarnessError:
        return ""
    task = dict(config.get("task_config") or {})
    cell = {option for known in KINDS.items.values() for option in known.cell_options()}
    task["options"] = {k: v for k, v in (task.get("options") or {}).items() if k not in cell}
    text = json.dumps([task, config.get("data_version")], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _clean(value, kind=None):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return kind(value) if kind else value


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The results frame with what selecting and pairing need: version, kind, variant, seed key, cell settings."""
    from harness.results.tables import model_versions

    if frame.empty:
        return frame
    frame = frame.reset_index(drop=True)
    kinds = list(frame["kind"]) if "kind" in frame else [""] * len(frame)
    settings = list(frame["cell_settings"]) if "cell_settings" in frame else [{}] * len(frame)
    out = pd.DataFrame({
        "model": frame["model"], "version": model_versions(frame), "lm": frame["lm"], "recipe": frame["recipe"],
        "task_name": frame["task_name"], "label": frame["task"], "kind": kinds,
        "variant": [_variant(d) for d in frame["run_dir"]], "shots": frame["shots"].astype(int),
        "images": frame["images"], "limit": frame["limit"].astype(int), "run_dir": frame["run_dir"],
    })  # fmt: skip
    out["settings"] = pd.Series([ordered_settings(k, s or {}) for k, s in zip(kinds, settings)], dtype=object)
    train = frame["train_seed"] if "train_seed" in frame else [None] * len(frame)
    out["seed_key"] = [f"{'' if _clean(t) is None else int(t)}/{s}" for t, s in zip(train, frame["seed"])]
    return out


def matches(selector: Selector, run: dict) -> bool:
    """Whether a run (a row of ``prepare``) is one ``selector`` takes."""
    import fnmatch

    def any_of(patterns, *values) -> bool:
        return not patterns or any(fnmatch.fnmatchcase(str(v), p) for p in patterns for v in values)

    return (any_of(selector.model, run["model"], run["version"]) and any_of(selector.lm, run["lm"])
            and any_of(selector.recipe, run["recipe"]) and any_of(selector.task, run["task_name"], run["label"])
            and (not selector.kind or run["kind"] in selector.kind)
            and (not selector.shots or run["shots"] in selector.shots)
            and (selector.min_shots is None or run["shots"] >= selector.min_shots)
            and (not selector.images or run["images"] in selector.images)
            and all(_value(run, name) in values for name, values in selector.settings))  # fmt: skip


def _value(run: dict, name: str):
    """A run's value of a cell setting; None where its kind has none of that name."""
    return dict(run["settings"]).get(name)


def cells(runs: pd.DataFrame, selector: Selector) -> dict[tuple, list[dict]]:
    """The runs ``selector`` takes, by cell identity (``IDENTITY``)."""
    out: dict[tuple, list[dict]] = {}
    for run in runs.to_dict("records") if not runs.empty else []:
        if matches(selector, run):
            out.setdefault(tuple(run[f] for f in IDENTITY), []).append(run)
    return out


def scores(runs: list[dict]) -> dict[tuple[str, str], float]:
    """Per-item scores of a cell's runs, keyed by (seed key, item id); skipped and unscored items left out."""
    from harness.results.rundir import read_samples

    out = {}
    for run in runs:
        for sample in read_samples(Path(run["run_dir"]) / "samples.jsonl"):
            if "skipped" not in sample and sample.get("score") is not None:
                out[(run["seed_key"], str(sample["id"]))] = float(sample["score"])
    return out


def paired(a: dict[tuple, float], b: dict[tuple, float]) -> dict:
    """B - A over the items both hold (same seed key and id), in points: n, n_seeds, effect, CI, p and its test.
    No shared item: n 0 and no numbers."""
    keys = sorted(a.keys() & b.keys())
    if not keys:
        return {"n": 0, "n_seeds": 0}
    by_seed: dict[str, list[float]] = {}
    for key in keys:
        by_seed.setdefault(key[0], []).append(b[key] - a[key])
    a_list, b_list = [a[k] for k in keys], [b[k] for k in keys]
    if len(by_seed) > 1:
        effect, low, high = stats.paired_two_level_bootstrap_ci(list(by_seed.values()))
    else:
        effect, low, high = stats.paired_bootstrap_ci(a_list, b_list)
    p, test = stats.paired_p_value(a_list, b_list)
    return {"n": len(keys), "n_seeds": len(by_seed), "effect": 100 * effect, "ci95_low": 100 * low,
            "ci95_high": 100 * high, "p_value": p, "test": test}  # fmt: skip


def absolute(a: dict[tuple, float]) -> dict:
    """A's own score in points: the mean of per-seed means, with its bootstrap CI (two-level over seeds)."""
    by_seed: dict[str, list[float]] = {}
    for (seed, _), value in sorted(a.items()):
        by_seed.setdefault(seed, []).append(value)
    if not by_seed:
        return {"n": 0, "n_seeds": 0}
    effect = sum(sum(v) / len(v) for v in by_seed.values()) / len(by_seed)
    if len(by_seed) > 1:
        low, high = stats.two_level_bootstrap_ci(list(by_seed.values()))
    else:
        low, high = stats.bootstrap_ci(next(iter(by_seed.values())))
    return {"n": len(a), "n_seeds": len(by_seed), "effect": 100 * effect, "ci95_low": 100 * low,
            "ci95_high": 100 * high}  # fmt: skip


def _side(ident: dict, freed: set[str]) -> str:
    """What one side of a comparison is, in the fields the two sides differ in."""
    declared = cell_settings()
    parts = [ident["version"]] if "version" in freed else []
    parts += [declared[k].side_text(v) for k, v in ident["settings"] if k in freed and k in declared]
    parts += [f"{ident['shots']}-shot"] if "shots" in freed else []
    parts += [_SHORT.get(ident["images"], ident["images"])] if "images" in freed else []
    return " ".join(parts)


def _common(ident: dict, freed: set[str], variants: dict[str, set]) -> str:
    """What the two sides share: model, task with its cell settings (those not compared), shots, images, --limit."""
    task = cell_label(ident["kind"], ident["task_name"], {k: v for k, v in ident["settings"] if k not in freed})
    task += f" [task {ident['variant']}]" if len(variants.get(ident["task_name"], ())) > 1 else ""
    parts = [] if "version" in freed else [ident["version"]]
    parts += [task] + ([] if "shots" in freed else [f"{ident['shots']}-shot"])
    text = " ".join(parts) + (f" (first {ident['limit']})" if ident["limit"] else "")
    return text + ("" if "images" in freed else f", {conditions.label(ident['images'])}")


def _order(key: tuple) -> tuple:
    """Cells in order of task, variant, cell settings (each by name, in the kinds' order), limit, model, shots,
    images; a field a cell lacks first."""
    ident = dict(zip(IDENTITY, key))
    settings = dict(ident["settings"])
    names = list(cell_settings()) + sorted(set(settings) - set(cell_settings()))
    values = [ident["task_name"], ident["variant"], *(settings.get(n) for n in names)]
    values += [ident[f] for f in ("limit", "lm", "recipe", "version", "shots", "images")]
    return tuple((v is None, v if v is not None else 0) for v in values)


def _kept(key: tuple, freed: set[str]) -> tuple:
    """A cell's identity but the fields (and cell settings) a comparison frees: what its counterpart shares."""
    ident = dict(zip(IDENTITY, key))
    ident["settings"] = tuple((k, v) for k, v in ident["settings"] if k not in freed)
    return tuple(v for f, v in ident.items() if f not in freed)


def _measure_one(finding: FindingSpec, runs: pd.DataFrame, variants: dict) -> tuple[list[dict], str]:
    """The rows of one finding, and a note on cells that had no counterpart."""
    row = {"finding": finding.name, "claim": finding.claim}
    a_cells = cells(runs, finding.a)
    if finding.b is None:
        out = []
        for key in sorted(a_cells, key=_order):
            ident = dict(zip(IDENTITY, key))
            measured = absolute(scores(a_cells[key]))
            out.append({**row, "cells": _common(ident, set(), variants), **measured})
        return out or [{**row, "cells": f"no runs of a ({finding.a.describe()})", "n": 0, "n_seeds": 0}], ""
    b_cells = cells(runs, finding.b)
    freed = finding.freed()
    b_by: dict[tuple, list[tuple]] = {}
    for key in sorted(b_cells, key=_order):
        b_by.setdefault(_kept(key, freed), []).append(key)
    out, paired_b, lone_a = [], set(), 0
    for key in sorted(a_cells, key=_order):
        others = [k for k in b_by.get(_kept(key, freed), []) if k != key]
        lone_a += not others
        a_ident = dict(zip(IDENTITY, key))
        for other in others:
            paired_b.add(other)
            b_ident = dict(zip(IDENTITY, other))
            text = f"{_common(a_ident, freed, variants)}: {_side(b_ident, freed)} vs {_side(a_ident, freed)}"
            out.append({**row, "cells": text, **paired(scores(a_cells[key]), scores(b_cells[other]))})
    lone_b = len(set(b_cells) - paired_b)
    if not out:
        if not a_cells or not b_cells:
            what = f"no runs of a ({finding.a.describe()})" if not a_cells else f"no runs of b ({finding.b.describe()})"
        else:
            what = f"no cell of a ({finding.a.describe()}) has a counterpart in b ({finding.b.describe()})"
        return [{**row, "cells": what, "n": 0, "n_seeds": 0}], ""
    note = f"{finding.name}: {lone_a} cell(s) of a and {lone_b} of b had no counterpart" if lone_a or lone_b else ""
    return out, note


def measure(frame: pd.DataFrame, findings: Findings) -> tuple[pd.DataFrame, list[str]]:
    """Every finding measured on the results frame: the table (``COLUMNS``) and notes to print under it."""
    runs = prepare(frame)
    variants: dict[str, set] = {}
    for name, variant in zip(runs.get("task_name", []), runs.get("variant", [])):
        variants.setdefault(name, set()).add(variant)
    rows, notes = [], []
    for finding in findings.findings:
        found, note = _measure_one(finding, runs, variants)
        for row in found:
            row["verdict"] = verdict(finding.claim, row.get("ci95_low"), row.get("ci95_high"), finding.threshold,
                                     finding.margin)  # fmt: skip
        rows += found
        notes += [note] if note else []
        if finding.note:
            notes.append(f"{finding.name}: {finding.note}")
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    tested = table["p_value"].notna()
    table["p_holm"] = float("nan")
    if tested.any():
        table.loc[tested, "p_holm"] = stats.holm(table.loc[tested, "p_value"].astype(float).tolist())
    return table, notes + ([findings.note] if findings.note else [])


def _fmt(value, signed: bool, digits: int) -> str:
    return "" if pd.isna(value) else f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown(table: pd.DataFrame, notes: list[str]) -> str:
    """The table as GitHub Markdown, with what its numbers are and its notes under it."""
    from tabulate import tabulate

    rows = []
    for r in table.itertuples():
        signed = r.claim != "a near zero"
        n = "" if not r.n else f"{int(r.n)}" + (f" ({int(r.n_seeds)} seeds)" if r.n_seeds > 1 else "")
        ci = "" if pd.isna(r.ci95_low) else f"[{_fmt(r.ci95_low, signed, 1)}, {_fmt(r.ci95_high, signed, 1)}]"
        p = "" if pd.isna(r.p_holm) else f"{r.p_holm:.3g}"
        rows.append([r.finding, r.cells, n, _fmt(r.effect, signed, 2), ci, p, r.verdict])
    headers = ["finding", "cells compared (B vs A)", "n items", "effect (points)", "95% CI", "p (Holm)", "verdict"]
    tested = int(table["p_value"].notna().sum())
    footer = [
        "effect: B - A in points over the items both cells hold, paired by item id and seed (B named first); for a "
        "'near zero' claim, A's own score. 95% CI: paired bootstrap over items (two-level, seeds then items, where "
        f"several seeds are shared). p: exact McNemar for 0/1 scores, else a paired sign-flip permutation test, "
        f"Holm-adjusted over the {tested} p-value(s) of the table.",
        "verdict: holds = the CI wholly on the claimed side (beyond the margin; for 'near zero', below the "
        "threshold); does not hold = the CI wholly on the other side or at it; not shown = the CI spans it; not "
        "measured = no runs of a side, or no shared items. It reads the CI alone: with few items a bootstrap CI can "
        "clear 0 while the adjusted p stays above 0.05, so read both.",
    ]
    return (
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        + "\n\n"
        + "\n".join([*footer, *notes])
        + "\n"
    )


def csv(table: pd.DataFrame) -> str:
    """The table as CSV, one row per row, points to 4 decimals."""
    return table.round({"effect": 4, "ci95_low": 4, "ci95_high": 4}).to_csv(index=False)
