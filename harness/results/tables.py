"""Tables from the results database: the comparison table and the leaderboard export.

Cells are mean ± std over seeds with the seed count; runs made with --limit are partial and
marked with * wherever they show. Published numbers are extra rows, labelled, never mixed in; so are a few-shot
cell's no-model baselines ("no model: copy last shot"). Where the runs were computed in more than one precision, each
row names its own ([bf16]). Every CI is seeded by its cell's identity (``stats.seed_of``) over samples in a fixed
order, so a table regenerates digit for digit whatever order the runs were indexed in.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import conditions
from harness.errors import HarnessError
from harness.metrics import stats

# The leaderboard's columns, in this order (documented in docs/files-and-records.md; append new ones at the end).
LEADERBOARD_COLUMNS = [
    "task", "shots", "model", "lm", "recipe", "images", "metric", "mean", "std", "ci95_low", "ci95_high",
    "n_samples", "seeds", "n_seeds", "partial", "model_fingerprints", "task_fingerprint", "harness_version", "date",
    "limit", "skipped", "train_seeds", "model_family",
]  # fmt: skip


def _column(task, shots, limit) -> str:
    return f"{task} {shots}-shot" + (f" (first {limit})" if limit else "")


def model_versions(frame: pd.DataFrame) -> pd.Series:
    """The model name, plus its family's fingerprint where one name covers differently trained models (a recipe
    changed with --set, a user's recipe shadowing a built-in one): 'gpt2-frozen [abcd1234]'. Models that differ
    only in their training seed are one family."""
    frame = _optional_columns(frame)
    several = frame.groupby("model")["model_family"].transform("nunique") > 1
    return frame["model"].where(~several, frame["model"] + " [" + frame["model_family"].str[:8] + "]")


def _labels(frame: pd.DataFrame) -> pd.Series:
    """Row labels: the model's version (``model_versions``), so two differently trained models are never averaged
    together, its precision where the frame holds more than one, and the image condition."""
    frame = _optional_columns(frame)
    several = frame["precision"].replace("", pd.NA).nunique() > 1
    precision = frame["precision"].map(lambda p: f" [{p}]" if several and p else "")
    return model_versions(frame) + precision + frame["images"].map(condition_suffix)


# What each no-model baseline is called in a table row ("no model: copy last shot"); others by their name.
BASELINE_LABELS = {"copy_last": "copy last shot", "majority": "majority answer of the shots",
                   "type_prior": "most frequent training answer of the question type"}  # fmt: skip


def baseline_label(name: str) -> str:
    return f"no model: {BASELINE_LABELS.get(name, name.replace('_', ' '))}"


def condition_suffix(images: str) -> str:
    """What follows a model's name for runs under an image condition other than real images."""
    return "" if images == "real" else f" ({conditions.label(images)})"


def _optional_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns newer than some records (a run from before skip counting skipped nothing; one from before
    training-seed families is a family of its own), and ``seed_key``: a run's training and evaluation seed,
    the unit seeds are counted and resampled in."""
    frame = frame if "skipped" in frame else frame.assign(skipped=0)
    if "model_family" not in frame:
        frame = frame.assign(model_family=frame["model_fingerprint"])
    if "train_seed" not in frame:
        frame = frame.assign(train_seed=None)
    if "task_fingerprint" not in frame:
        frame = frame.assign(task_fingerprint=None)
    if "all_empty" not in frame:
        frame = frame.assign(all_empty=False)
    if "precision" not in frame:
        frame = frame.assign(precision="")
    if "seed" not in frame:  # a frame of cells, already aggregated over seeds
        return frame
    keys = [f"{'' if pd.isna(t) else int(t)}/{s}" for t, s in zip(frame["train_seed"], frame["seed"])]
    return frame.assign(seed_key=keys)


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    frame = _optional_columns(frame)
    keys = ["model", "model_family", "lm", "recipe", "images", "task", "task_fingerprint", "shots", "limit", "metric",
            "precision"]  # fmt: skip
    return (
        frame.groupby(keys, dropna=False)
        .agg(
            mean=("score", "mean"),
            std=("score", "std"),
            n_seeds=("seed_key", "nunique"),
            partial=("partial", "max"),
            skipped=("skipped", "sum"),
            empty_runs=("all_empty", "sum"),
            runs=("score", "size"),
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
        empty = int(row["empty_runs"])
        if empty:  # a model that said nothing scores 0: said, not shown as a measurement
            skipped += (
                " (all answers empty)"
                if empty == row["runs"]
                else f" (all answers empty in {empty} of {row['runs']} runs)"
            )
        return f"{row['mean']:.2f}{std} (n={row['n_seeds']}){'*' if row['partial'] else ''}{skipped}"

    cells["cell"] = cells.apply(text, axis=1)
    cells["column"] = [_column(t, s, n) for t, s, n in zip(cells["task"], cells["shots"], cells["limit"])]
    cells["row"] = _labels(cells)
    table = cells.pivot_table(index="row", columns="column", values="cell", aggfunc="first").fillna("")
    baselines = _baseline_rows(frame)
    if baselines:
        table = pd.concat([table, pd.DataFrame.from_dict(baselines, orient="index")]).fillna("")
    if published is not None and not published.empty:
        from harness.results.published import setting_differences

        ours = dict(zip(cells["column"], cells["lm"]))
        kinds = dict(zip(frame["task_name"], frame["kind"])) if "kind" in frame and "task_name" in frame else {}
        extra = {}
        for _, p in published.iterrows():
            # A naming row's shot count is its inner shots, and its task label names its setting, as ours do.
            shots = p["shots"] if pd.notna(p["shots"]) else p["inner_shots"]
            task = _published_label(p, kinds.get(p["task"]))
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


def corpus_notes(frame: pd.DataFrame) -> list[str]:
    """A line for each cell scored by a corpus metric (CIDEr) over too few images to mean anything
    (``stats.corpus_note``), to print under the table."""
    if frame.empty or "metrics_json" not in frame:
        return []
    import json

    from harness.results.records import RunRecord

    frame = frame.assign(row=_labels(frame))
    notes = []
    for run in frame.itertuples():
        if RunRecord.from_json(json.loads(run.metrics_json)).corpus:
            where = f"{run.row}, {_column(run.task, run.shots, run.limit)}"
            notes.append(stats.corpus_note(run.metric, int(run.n), where))
    return [note for note in dict.fromkeys(notes) if note]


def _baseline_rows(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """The no-model baselines of the few-shot cells (records' ``baselines``), one row each: per column, the mean over
    the cell's few-shot seeds (they depend on the prompts alone, not on the model)."""
    if "baselines" not in frame:
        return {}
    scores: dict[tuple[str, str], dict] = {}
    for task, shots, limit, seed, held in zip(frame["task"], frame["shots"], frame["limit"], frame["seed"],
                                              frame["baselines"]):  # fmt: skip
        for name, score in sorted((held or {}).items()):
            scores.setdefault((baseline_label(name), _column(task, shots, limit)), {})[seed] = float(score)
    rows: dict[str, dict[str, str]] = {}
    for (label, column), by_seed in sorted(scores.items()):
        mean = sum(by_seed.values()) / len(by_seed)
        rows.setdefault(label, {})[column] = f"{mean:.2f} (n={len(by_seed)})"
    return rows


def _published_label(row: pd.Series, kind: str | None) -> str:
    """A published number's task label: its task, with the cell settings of the task's kind that its row gives
    (naming's ways and induction), as our runs of that setting are labelled."""
    from harness.kinds.base import KINDS, cell_label

    if kind is None:  # none of our runs is of its task: its kind from the task registry
        from harness import registry

        kind = registry.TASKS.get(row["task"]).kind if row["task"] in registry.TASKS.names() else ""
    declared = KINDS.items.get(kind)
    given = {s.name: s.type(row[s.name]) for s in (declared.cell_settings if declared else ())
             if s.name in row and pd.notna(row[s.name])}  # fmt: skip
    return cell_label(kind, row["task"], given)


def _sample_scores(run_dir: str) -> dict[str, float]:
    from harness.results.rundir import read_samples

    return {s["id"]: s.get("score") for s in read_samples(Path(run_dir) / "samples.jsonl") if "skipped" not in s}


def comparisons(frame: pd.DataFrame, baseline: str, alpha: float = 0.05) -> pd.DataFrame:
    """Every other row (model and image condition) against ``baseline``'s real-image runs, per task x shots:
    one row each with the mean difference over the same (seed, sample) pairs, its 95% CI and paired p-value as
    ``harness findings`` measures them (``findings_table.paired``: samples resampled with all their seeds, the test on
    per-sample means), its Holm-adjusted value across the whole table, and the recipe fields the two models also
    differ in (``harness.results.guards``)."""
    from harness.results.guards import also_differ
    from harness.results.pairing import paired

    if frame.empty:
        raise HarnessError(f"no finished runs of baseline model '{baseline}' in the results database")
    frame = _optional_columns(frame).assign(row=_labels(frame), version=model_versions(frame))
    # The name, or the version label the tables print (matched even where the frame holds one version only).
    full = frame["model"] + " [" + frame["model_family"].str[:8] + "]"
    named = (frame["model"] == baseline) | (frame["version"] == baseline) | (full == baseline)
    base = frame[named & (frame["images"] == "real")]
    if base.empty:
        known = ", ".join(sorted(set(frame.loc[frame["images"] == "real", "version"])))
        raise HarnessError(f"no finished real-image runs of baseline model '{baseline}' in the results database"
                           + (f" (there are: {known})" if known else ""))  # fmt: skip
    if base["model_family"].nunique() > 1:
        choices = " or ".join(f"--baseline '{v}'" for v in sorted(set(base["version"])))
        raise HarnessError(f"baseline '{baseline}' names {base['model_family'].nunique()} differently trained "
                           f"models: name one as the tables do, {choices}")  # fmt: skip
    out = []
    for (task, shots, limit), base_runs in base.groupby(["task", "shots", "limit"]):
        reference = _paired_scores(base_runs)
        others = frame[(frame["task"] == task) & (frame["shots"] == shots) & (frame["limit"] == limit)]
        for row, runs in others.groupby("row"):
            if row == base["row"].iloc[0]:
                continue
            theirs = _paired_scores(runs)
            if not reference.keys() & theirs.keys():
                continue
            seed = stats.seed_of(task, shots, limit, *sorted(set(base_runs["model_family"])),
                                 *sorted(set(runs["model_family"])), *sorted(set(runs["images"])))  # fmt: skip
            found = paired(reference, theirs, seed, alpha)
            differ = also_differ(base_runs["run_dir"].iloc[0], runs["run_dir"].iloc[0])
            out.append({"row": row, "column": _column(task, shots, limit), "delta": found["effect"],
                        "ci95_low": found["ci95_low"], "ci95_high": found["ci95_high"], "n": found["n"],
                        "n_seeds": found["n_seeds"], "p_value": found["p_value"], "test": found["test"],
                        "n_items": found["n_items"], "p_floor": found["p_floor"], "also_differ": ", ".join(differ)})  # fmt: skip
    if not out:
        raise HarnessError(f"no runs share a task, shots and samples with baseline '{baseline}'")
    table = pd.DataFrame(out)
    table["p_holm"] = stats.holm(table["p_value"].tolist())
    return table


def compare(frame: pd.DataFrame, baseline: str, alpha: float = 0.05) -> pd.DataFrame:
    """``comparisons`` as a table: rows = other models and conditions, columns = task x shots, cells
    'delta [low, high] (n=pairs)', marked * where the Holm-adjusted p-value is below ``alpha``."""
    table = comparisons(frame, baseline, alpha)
    cells: dict[str, dict[str, str]] = {}
    for c in table.itertuples():
        mark = "*" if c.p_holm < alpha else ""
        seeds = f", {c.n_seeds} seeds" if c.n_seeds > 1 else ""
        ci = f"[{c.ci95_low:+.1f}, {c.ci95_high:+.1f}]" if stats.ci_shown(c.n_items) else f"({stats.NO_CI})"
        cells.setdefault(c.row, {})[c.column] = f"{c.delta:+.2f} {ci}{mark} (n={c.n}{seeds})"
    out = pd.DataFrame.from_dict(cells, orient="index").fillna("")
    out.index.name = f"Δ vs {baseline}"
    return out


def compare_footer(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """What the compare table's numbers are, in one paragraph under it, and what else the models differ in."""
    lines = [
        "Δ in points (other - baseline) over the same seed and sample pairs (the mean of per-seed means), with a 95% "
        "CI from a bootstrap over samples, each resampled with all its seeds; "
        f"* = significant at {alpha:g} after Holm's adjustment for all {len(table)} comparisons of the table "
        "(p-values on per-sample means: exact McNemar for 0/1 scores, a paired sign-flip permutation test otherwise)"
    ]  # fmt: skip
    if "n_items" in table and not all(map(stats.ci_shown, table["n_items"])):
        lines.append(stats.NO_CI_WHY)
    if "also_differ" in table:
        differ = dict.fromkeys((r, d) for r, d in zip(table["row"], table["also_differ"]) if d)
        lines += [f"{row}: these models also differ in: {fields}" for row, fields in differ]
    return "\n".join(lines)


def _paired_scores(runs: pd.DataFrame) -> dict[tuple, float]:
    """Per-sample scores of a cell's runs keyed by (seed, sample id)."""
    return {(seed, i): v for seed, d in zip(runs["seed_key"], runs["run_dir"]) for i, v in _sample_scores(d).items()}


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, shots, model, images): mean and std over seeds and a 95% CI over samples (two-level,
    seeds then samples, where the cell has several seeds; training seeds of one family count as seeds); no CI (empty
    cells) over fewer than ``stats.MIN_ITEMS_FOR_CI`` distinct samples."""
    if frame.empty:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    frame = _optional_columns(frame)
    out = []
    keys = ["task", "task_fingerprint", "shots", "limit", "model", "model_family", "lm", "recipe", "images", "metric"]
    for key, group in frame.groupby(keys, dropna=False):
        # Seeds in their order, samples in id order, the resamples seeded by the cell: never the rows' order.
        group = group.sort_values(["seed_key", "seed"], kind="stable")
        by_seed = [_sample_scores(d) for d in group["run_dir"]]
        per_seed = [[v for _, v in sorted(held.items(), key=lambda kv: str(kv[0]))] for held in by_seed]
        scores = [s for seed_scores in per_seed for s in seed_scores]
        seed = stats.seed_of(*key)
        if not stats.ci_shown(len({i for held in by_seed for i in held})):  # too few items: empty CI cells
            low = high = float("nan")
        elif group["seed_key"].nunique() > 1:
            low, high = stats.two_level_bootstrap_ci([s for s in per_seed if s], seed=seed)
        else:
            low, high = stats.bootstrap_ci(scores, seed=seed)
        task, _, shots, limit, model, family, lm, recipe, images, metric = key
        train_seeds = sorted({int(t) for t in group["train_seed"] if not pd.isna(t)})
        out.append({
            "task": task, "shots": shots, "limit": limit, "model": model, "lm": lm, "recipe": recipe, "images": images,
            "metric": metric, "mean": round(group["score"].mean(), 2),
            "std": round(group["score"].std(), 2) if len(group) > 1 else float("nan"),
            "ci95_low": round(100 * low, 2), "ci95_high": round(100 * high, 2), "n_samples": len(scores),
            "seeds": " ".join(str(s) for s in sorted(group["seed"].unique())), "n_seeds": group["seed_key"].nunique(),
            "partial": bool(group["partial"].max()),
            "model_fingerprints": " ".join(sorted(group["model_fingerprint"].unique())),
            "task_fingerprint": " ".join(sorted(group["task_fingerprint"].dropna().unique())),
            "harness_version": " ".join(sorted(group["harness_version"].unique())),
            "date": max(group["created"]), "skipped": int(group["skipped"].sum()),
            "train_seeds": " ".join(map(str, train_seeds)), "model_family": family,
        })  # fmt: skip
    return pd.DataFrame(out, columns=LEADERBOARD_COLUMNS).sort_values(["task", "shots", "limit", "model", "images"])
