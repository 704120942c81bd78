"""The findings table: each finding of a findings file (``harness.results.findings``) measured on the runs of the results
database, one row per pair of cells it compares (or per cell, for an absolute claim).

A cell is every run of one model version, task (and its settings), shots, image condition and --limit, over its
seeds. Two cells are compared on the items they share, keyed by (training and few-shot seed, item id): the effect is
the mean of per-seed mean differences B - A in points; the draws (seeds) of one item are one cluster: its 95% CI is a
bootstrap that resamples items with all their draws, its p-value a paired test on per-item means (exact McNemar for
0/1 scores, else a sign-flip permutation test), Holm-adjusted over every p-value of the table. Every resampling is
seeded by the identity of the cells compared (``stats.seed_of``), never by the order of the database's rows. Reads run
records, samples and run configs (for ``harness.results.guards``) only.
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
from harness.results.escape import csv_text, markdown_rows
from harness.results.findings import IDENTITY, Findings, FindingSpec, Selector, verdict
from harness.results.pairing import absolute, paired  # noqa: F401 - measured here, and named here by tests

COLUMNS = ["finding", "claim", "cells", "n", "n_seeds", "effect", "ci95_low", "ci95_high", "p_value", "test",
           "p_holm", "verdict", "n_items", "p_floor", "detectable", "trained_a", "trained_b", "control",
           "also_differ"]  # fmt: skip
_SHORT = {"real": "real", "black": "blacked out", "shuffled": "shuffled", "caption": "as text"}
BASELINE = "baseline:"  # an image condition of a no-model baseline's pseudo-cell: baseline:copy_last


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
    out["split"] = frame["split"] if "split" in frame else "test"
    out["family"] = frame["model_family"] if "model_family" in frame else frame.get("model_fingerprint", out["model"])
    out["baseline"] = ""
    # A few-shot cell's no-model baselines (the record's ``baselines``) are cells of their own, beside the model's,
    # under the image condition baseline:<name>; their per-item scores are the samples' ``baselines``.
    pseudo = [{**run, "images": BASELINE + name, "baseline": name}
              for run, held in zip(out.to_dict("records"), frame.get("baselines", [None] * len(frame)))
              for name in sorted(held or {})]  # fmt: skip
    return pd.concat([out, pd.DataFrame(pseudo, columns=out.columns)], ignore_index=True) if pseudo else out


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
    """A run's value of a cell setting (a setting it does not record: the setting's ``default``); None where its
    kind has none of that name."""
    held = dict(run["settings"])
    if name in held:
        return held[name]
    known = KINDS.items.get(run["kind"])
    declared = {s.name: s for s in known.cell_settings} if known is not None else {}
    return declared[name].default if name in declared else None


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
            score = (sample.get("baselines") or {}).get(run["baseline"]) if run.get("baseline") else sample.get("score")
            if "skipped" not in sample and score is not None:
                out[(run["seed_key"], str(sample["id"]))] = float(score)
    return out


def cell_seed(runs: list[dict]) -> tuple:
    """What identifies a cell for seeding its resamples: model family, task, its variant and settings, shots,
    images, --limit (never the order of the database's rows)."""
    run = runs[0]
    return tuple(
        str(run[f]) for f in ("family", "task_name", "variant", "settings", "shots", "images", "limit", "split")
    )


def trained_models(runs: list[dict]) -> int:
    """How many trained models stand behind a cell: its distinct training seeds (a model not trained here: one)."""
    return len({run["seed_key"].split("/")[0] for run in runs})


def _side(ident: dict, freed: set[str]) -> str:
    """What one side of a comparison is, in the fields the two sides differ in."""
    declared = cell_settings()
    parts = [ident["version"]] if "version" in freed else []
    parts += [declared[k].side_text(v) for k, v in ident["settings"] if k in freed and k in declared]
    parts += [f"{ident['shots']}-shot"] if "shots" in freed else []
    parts += [_short(ident["images"])] if "images" in freed else []
    return " ".join(parts)


def _short(images: str) -> str:
    if images.startswith(BASELINE):
        from harness.results.tables import baseline_label

        return baseline_label(images[len(BASELINE) :])
    return _SHORT.get(images, images)


def _common(ident: dict, freed: set[str], variants: dict[str, set]) -> str:
    """What the two sides share: model, task with its cell settings (those not compared), shots, images, --limit."""
    task = cell_label(ident["kind"], ident["task_name"], {k: v for k, v in ident["settings"] if k not in freed})
    task += f" [task {ident['variant']}]" if len(variants.get(ident["task_name"], ())) > 1 else ""
    task += " [dev]" if ident["split"] == "dev" else ""
    parts = [] if "version" in freed else [ident["version"]]
    parts += [task] + ([] if "shots" in freed else [f"{ident['shots']}-shot"])
    text = " ".join(parts) + (f" (first {ident['limit']})" if ident["limit"] else "")
    return text + ("" if "images" in freed else f", {_label(ident['images'])}")


def _label(images: str) -> str:
    return _short(images) if images.startswith(BASELINE) else conditions.label(images)


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


def _measure_one(finding: FindingSpec, runs: pd.DataFrame, variants: dict, alpha: float) -> tuple[list[dict], str]:
    """The rows of one finding, and a note on cells that had no counterpart."""
    from harness.results.guards import also_differ

    row = {"finding": finding.name, "claim": finding.claim}
    a_cells = cells(runs, finding.a)
    if finding.b is None:
        out = []
        for key in sorted(a_cells, key=_order):
            ident = dict(zip(IDENTITY, key))
            measured = absolute(scores(a_cells[key]), stats.seed_of(*cell_seed(a_cells[key])))
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
            a_runs, b_runs = a_cells[key], b_cells[other]
            seed = stats.seed_of(*cell_seed(a_runs), *cell_seed(b_runs))
            measured = paired(scores(a_runs), scores(b_runs), seed, alpha)
            if "version" in freed:  # model against model: how many trained models, what else their recipes change
                measured.update(
                    trained_a=trained_models(a_runs),
                    trained_b=trained_models(b_runs),
                    also_differ=", ".join(also_differ(a_runs[0]["run_dir"], b_runs[0]["run_dir"])),
                )
            out.append({**row, "cells": text, **measured})
    lone_b = len(set(b_cells) - paired_b)
    if not out:
        if not a_cells or not b_cells:
            what = f"no runs of a ({finding.a.describe()})" if not a_cells else f"no runs of b ({finding.b.describe()})"
        else:
            what = f"no cell of a ({finding.a.describe()}) has a counterpart in b ({finding.b.describe()})"
        return [{**row, "cells": what, "n": 0, "n_seeds": 0}], ""
    note = f"{finding.name}: {lone_a} cell(s) of a and {lone_b} of b had no counterpart" if lone_a or lone_b else ""
    return out, note


def measure(frame: pd.DataFrame, findings: Findings, alpha: float = 0.05) -> tuple[pd.DataFrame, list[str]]:
    """Every finding measured on the results frame: the table (``COLUMNS``) and notes to print under it. Verdicts
    at level ``alpha`` on the Holm-adjusted p-values."""
    runs = prepare(frame)
    variants: dict[str, set] = {}
    for name, variant in zip(runs.get("task_name", []), runs.get("variant", [])):
        variants.setdefault(name, set()).add(variant)
    rows, notes = [], []
    for finding in findings.findings:
        found, note = _measure_one(finding, runs, variants, alpha)
        rows += found
        notes += [note] if note else []
        if finding.note:
            notes.append(f"{finding.name}: {finding.note}")
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    tested = table["p_value"].notna()
    table["p_holm"] = float("nan")
    if tested.any():
        table.loc[tested, "p_holm"] = stats.holm(table.loc[tested, "p_value"].astype(float).tolist())
    specs = {f.name: f for f in findings.findings}
    table["verdict"] = [
        "not shown" if _too_few(r) else
        verdict(r.claim, _clean(r.ci95_low), _clean(r.ci95_high), specs[r.finding].threshold, specs[r.finding].margin,
                _clean(r.p_holm), alpha)
        for r in table.itertuples()
    ]  # fmt: skip
    table["control"] = [("held" if v == "holds" else "failed") if specs[f].control and v != "not measured" else ""
                        for f, v in zip(table["finding"], table["verdict"])]  # fmt: skip
    for name, spec in specs.items():
        failed = int(((table["finding"] == name) & (table["control"] == "failed")).sum())
        if failed:
            guarded = f" ({'; '.join(spec.guards)})" if spec.guards else ""
            notes.append(f"control failed: {name}, in {failed} cell(s): the comparisons it guards{guarded} are suspect")
    for r in (r for r in table.itertuples() if isinstance(r.also_differ, str) and r.also_differ):
        notes.append(f"{r.finding}: {r.cells}: these models also differ in: {r.also_differ}")
    return table, notes + ([findings.note] if findings.note else [])


def _too_few(r) -> bool:
    """Whether a measured row has too few items for a CI (``stats.MIN_ITEMS_FOR_CI``): its verdict is "not shown"."""
    return bool(r.n) and not pd.isna(r.n_items) and not stats.ci_shown(r.n_items)


def _fmt(value, signed: bool, digits: int) -> str:
    return "" if pd.isna(value) else f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def p_text(p: float, at_floor: bool, resamples: int = stats.PERMUTATION_RESAMPLES) -> str:
    """A p-value as printed; one whose raw value is at the permutation test's floor 1/(R+1) is an upper bound: "≤"."""
    if pd.isna(p):
        return ""
    return f"≤ {p:.2g}" if at_floor else f"{p:.3g}"


def verdict_line(r) -> str:
    """A row's verdict as the Markdown table prints it: with a failed control, the trained models behind a model
    comparison where a side has one, and for "not shown" the effect its cell could have detected."""
    text = r.verdict
    if r.control == "failed":
        text += ": **control failed**"
    if not pd.isna(r.trained_a) and min(r.trained_a, r.trained_b) == 1:
        a, b = int(r.trained_a), int(r.trained_b)
        text += " (1 trained model per side)" if a == b else f" ({b} vs {a} trained models)"
    if _too_few(r):
        text += f" ({stats.NO_CI})"
    elif r.verdict == "not shown" and not pd.isna(r.detectable):
        text += f" (could detect ±{r.detectable:.1f})"
    return text


def markdown(table: pd.DataFrame, notes: list[str], alpha: float = 0.05) -> str:
    """The table as GitHub Markdown, with what its numbers are and its notes under it."""
    from tabulate import tabulate

    rows = []
    for r in table.itertuples():
        signed = r.claim != "a near zero"
        n = "" if not r.n else f"{int(r.n)}"
        if r.n and r.n_seeds > 1:
            n += f" ({int(r.n_items)} items x {int(r.n_seeds)} seeds)" if not pd.isna(r.n_items) else ""
        ci = "" if pd.isna(r.ci95_low) else f"[{_fmt(r.ci95_low, signed, 1)}, {_fmt(r.ci95_high, signed, 1)}]"
        ci = stats.NO_CI if _too_few(r) else ci
        floor = bool(r.p_floor) if not pd.isna(r.p_floor) else False
        rows.append([r.finding, r.cells, n, _fmt(r.effect, signed, 2), ci, p_text(r.p_value, floor),
                     p_text(r.p_holm, floor), verdict_line(r)])  # fmt: skip
    headers = ["finding", "cells compared (B vs A)", "n", "effect (points)", "95% CI", "p", "p (Holm)", "verdict"]
    tested = int(table["p_value"].notna().sum())
    floor = 1 / (stats.PERMUTATION_RESAMPLES + 1)
    footer = [
        "effect: B - A in points over the items both cells hold, paired by item id and seed (B named first): the mean "
        "of per-seed means; for a 'near zero' claim, A's own score. n: item draws (items x few-shot seeds). 95% CI: "
        "a bootstrap over items, each item resampled with all its draws (draws of one item are one cluster). p: on "
        "per-item means, exact McNemar for 0/1 scores, else a paired sign-flip permutation test "
        f"({stats.PERMUTATION_RESAMPLES} flips: ≤ marks a p at its floor 1/{stats.PERMUTATION_RESAMPLES + 1} = "
        f"{floor:.2g}, and the adjusted value that follows from it), Holm-adjusted over the {tested} p-value(s) of "
        "the table.",
        f"verdict: holds = the CI wholly on the claimed side (beyond the margin) and Holm p < {alpha:g}; does not "
        f"hold = the CI wholly on the other side (or at it) and Holm p < {alpha:g}; not shown = anything else, with "
        "the effect the cell could have detected (80% power, two-sided, at alpha before the correction, from its "
        "per-item spread and number); for 'near zero', the CI below the threshold (holds) or above it (does not "
        "hold); not measured = no runs of a side, or no shared items. A model comparison where a side rests on one "
        "trained model says so: the difference between two training runs is not in the CI. A control that does not "
        "hold is a **control failed**: what it guards is suspect.",
        *([f"{stats.NO_CI_WHY}; such a row is not shown."] if any(_too_few(r) for r in table.itertuples()) else []),
    ]
    return (
        tabulate(markdown_rows(rows), headers=headers, tablefmt="github", disable_numparse=True)
        + "\n\n"
        + "\n".join([*footer, *notes])
        + "\n"
    )


def csv(table: pd.DataFrame) -> str:
    """The table as CSV, one row per row, points to 4 decimals."""
    counts = {c: "Int64" for c in ("n_items", "trained_a", "trained_b")}  # whole numbers, blank where unmeasured
    table = table.astype(counts).round({"effect": 4, "ci95_low": 4, "ci95_high": 4, "detectable": 4})
    return csv_text(table)
