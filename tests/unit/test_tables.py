"""The comparison table on a constructed results frame: cells, seeds, partial marks, published rows."""

import pandas as pd
import pytest

from harness.results.published import load_published
from harness.results.tables import comparison


def frame() -> pd.DataFrame:
    rows = []
    for seed, score in [(0, 30.0), (1, 32.0)]:
        rows.append(dict(model="gpt2-frozen", lm="gpt2", recipe="frozen", images="real", task="vqav2", shots=0,
                         metric="VQA accuracy", score=score, seed=seed, partial=0, limit=0, model_fingerprint="f1"))  # fmt: skip
    rows.append(dict(model="gpt2-frozen", lm="gpt2", recipe="frozen", images="black", task="vqav2", shots=0,
                     metric="VQA accuracy", score=20.0, seed=0, partial=1, limit=50, model_fingerprint="f1"))  # fmt: skip
    return pd.DataFrame(rows)


def test_cells_are_mean_std_over_seeds_and_partial_is_marked():
    table = comparison(frame())
    assert table.loc["gpt2-frozen", "vqav2 0-shot"] == "31.00 ± 1.41 (n=2)"
    assert (
        table.loc["gpt2-frozen (images blacked out)", "vqav2 0-shot (first 50)"] == "20.00 (n=1)*"
    )  # never mixed with full runs


def test_published_rows_are_labelled_apart_with_their_differences():
    table = comparison(frame(), load_published())
    published = [i for i in table.index if i.startswith("published: ")]
    frozen = next(i for i in published if i.startswith("published: Frozen (Frozen (Tsimpoukelli"))
    cell = table.loc[frozen, "vqav2 0-shot"]
    assert cell.startswith("29.5") and "differs:" in cell and "gpt2" in cell
    assert all(not i.startswith("published") for i in ("gpt2-frozen", "gpt2-frozen (images blacked out)"))
    assert "vqav2 4-shot" not in table.columns  # published cells only join columns we have


def test_compare_pairs_samples_by_seed_and_id(tmp_path):
    import json

    from harness.results.tables import compare

    def run(name: str, scores: dict) -> str:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "samples.jsonl").write_text(
            "".join(json.dumps({"id": i, "score": v}) + "\n" for i, v in scores.items())
        )
        return str(folder)

    ids = [f"q{i}" for i in range(100)]
    base_scores = {i: float(n % 2) for n, i in enumerate(ids)}
    better = {i: 1.0 for i in ids}  # +50 points on exactly the same questions
    same = dict(base_scores)
    rows = [
        dict(
            model="a-frozen",
            images="real",
            task="t",
            shots=0,
            limit=0,
            seed=0,
            model_fingerprint="f1",
            run_dir=run("a", base_scores),
        ),
        dict(
            model="a-finetuned",
            images="real",
            task="t",
            shots=0,
            limit=0,
            seed=0,
            model_fingerprint="f1",
            run_dir=run("b", better),
        ),
        dict(
            model="a-frozen",
            images="black",
            task="t",
            shots=0,
            limit=0,
            seed=0,
            model_fingerprint="f1",
            run_dir=run("c", same),
        ),
    ]
    table = compare(pd.DataFrame(rows), "a-frozen")
    import re

    low, high = map(
        float, re.fullmatch(r"\+50\.00 \[(\S+), (\S+)\]\* \(n=100\)", table.loc["a-finetuned", "t 0-shot"]).groups()
    )
    assert 38 <= low < 50 < high <= 62
    assert table.loc["a-frozen (images blacked out)", "t 0-shot"] == "+0.00 [+0.0, +0.0] (n=100)"


def test_two_differently_trained_models_of_one_name_are_never_averaged():
    other = frame().iloc[:1].assign(model_fingerprint="f2abcdef99", score=90.0)
    table = comparison(pd.concat([frame(), other], ignore_index=True))
    assert table.loc["gpt2-frozen [f1]", "vqav2 0-shot"] == "31.00 ± 1.41 (n=2)"
    assert table.loc["gpt2-frozen [f2abcdef]", "vqav2 0-shot"] == "90.00 (n=1)"


def test_published_naming_numbers_join_the_column_of_their_ways_and_induction():
    """Frozen's miniImageNet table has 2- and 5-way rows, with and without induction: each number
    joins only the column of exactly its setting, never another's."""
    rows = [
        dict(model="gpt2-frozen", lm="gpt2", recipe="frozen", images="real", task=task, shots=1, seed=0, score=s,
             metric="naming accuracy", partial=0, limit=0, model_fingerprint="f1")
        for task, s in [("miniimagenet-open 2-way", 40.0), ("miniimagenet-open 5-way", 15.0)]
    ]  # fmt: skip
    table = comparison(pd.DataFrame(rows), load_published())
    frozen = [i for i in table.index if i.startswith("published: Frozen (Frozen (Tsimpoukelli")]
    cells = {c: [table.loc[i, c] for i in frozen if table.loc[i, c]] for c in table.columns}
    assert [c.split(" ")[0] for c in cells["miniimagenet-open 2-way 1-shot"]] == ["29"]
    assert [c.split(" ")[0] for c in cells["miniimagenet-open 5-way 1-shot"]] == ["18"]
    assert "miniimagenet-open 2-way +induction 1-shot" not in table.columns  # no runs of ours in that setting


def _runs_frame(tmp_path, cells: dict[tuple[str, str, int], dict[str, float]]) -> pd.DataFrame:
    """A results frame of runs whose samples.jsonl hold the given scores, keyed (model, images, seed)."""
    import json

    rows = []
    for (model, images, seed), scores in cells.items():
        folder = tmp_path / f"{model}-{images}-{seed}"
        folder.mkdir()
        (folder / "samples.jsonl").write_text(
            "".join(json.dumps({"id": i, "score": v}) + "\n" for i, v in scores.items())
        )
        rows.append(dict(model=model, images=images, task="t", shots=1, limit=0, seed=seed, model_fingerprint="f1",
                         run_dir=str(folder)))  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_p_values_are_exact_mcnemar_and_holm_adjusted(tmp_path):
    """Right/wrong scores on 20 questions. 'b' is right on 9 questions the baseline gets wrong and wrong on 1 it
    gets right: McNemar's exact two-sided p = 2 * P[Bin(10, 1/2) <= 1] = 2 * 11 / 1024 = 0.021484375. 'c' differs
    on 2 questions, once each way: p = 1. Holm over the 2 comparisons: 2 * 0.021484375 = 0.04296875 (< 0.05:
    marked), and max(0.04296875, 1 * 1.0) = 1.0."""
    from harness.results.tables import compare, comparisons

    ids = [f"q{i}" for i in range(20)]
    base = {i: 1.0 if n < 5 else 0.0 for n, i in enumerate(ids)}  # right on q0..q4
    b = {i: 1.0 if 1 <= n < 14 else 0.0 for n, i in enumerate(ids)}  # loses q0, gains q5..q13
    c = {i: 1.0 if 1 <= n < 6 else 0.0 for n, i in enumerate(ids)}  # loses q0, gains q5
    frame = _runs_frame(tmp_path, {("a", "real", 0): base, ("b", "real", 0): b, ("c", "real", 0): c})
    found = comparisons(frame, "a").set_index("row")
    assert found.loc["b", "p_value"] == 0.021484375 and found.loc["b", "test"] == "mcnemar_exact"
    assert found.loc["c", "p_value"] == 1.0
    assert found.loc["b", "p_holm"] == 0.04296875 and found.loc["c", "p_holm"] == 1.0
    table = compare(frame, "a")
    assert table.loc["b", "t 1-shot"].startswith("+40.00 [") and "]* (n=20)" in table.loc["b", "t 1-shot"]
    assert "*" not in table.loc["c", "t 1-shot"]


def test_compare_csv_has_p_value_and_p_holm_and_a_permutation_test_for_fractional_scores(tmp_path, capsys):
    from harness.results.tables import compare_footer, comparisons

    ids = [f"q{i}" for i in range(8)]
    base = {i: 0.0 for i in ids}
    fractional = {i: 0.3 for i in ids}  # 8 positive differences: exactly 2 of 256 sign patterns are as extreme
    frame = _runs_frame(tmp_path, {("a", "real", 0): base, ("a", "black", 0): fractional})
    found = comparisons(frame, "a")
    assert {"p_value", "p_holm", "delta", "ci95_low", "ci95_high", "n"} <= set(found.columns)
    [row] = found.itertuples()
    assert row.test == "paired_permutation" and row.p_value == 2 / 256 and row.p_holm == 2 / 256
    footer = compare_footer(found)
    assert "Holm" in footer and "all 1 comparisons" in footer


def test_compare_resamples_items_with_all_their_seeds(tmp_path):
    from harness.results.tables import comparisons

    ids = [f"q{i}" for i in range(50)]
    cells = {}
    for seed, gain in ((0, 1.0), (1, 0.0)):  # the seeds disagree completely: +100 and +0 points
        cells[("a", "real", seed)] = {i: 0.0 for i in ids}
        cells[("b", "real", seed)] = {i: gain for i in ids}
    [row] = comparisons(_runs_frame(tmp_path, cells), "a").itertuples()
    assert row.n_seeds == 2 and row.delta == 50.0 and row.n_items == 50
    # Every item gained +100 in seed 0 and +0 in seed 1: resampled with both its draws, each item's mean is +50, and
    # so is every resample's; the test sees 50 per-item means of +0.5, not 100 independent items.
    assert row.ci95_low == row.ci95_high == 50.0
    assert row.test == "paired_permutation" and row.p_value == pytest.approx(1 / 10_001) and row.p_floor


def test_no_model_baselines_are_rows_of_their_own_beside_the_models():
    rows = frame()
    rows["shots"] = 1
    rows["baselines"] = [{"copy_last": 40.0, "majority": 30.0}, {"copy_last": 44.0, "majority": 30.0}, {}]
    old = frame().assign(shots=1)  # records from before baselines: no such column at all
    table = comparison(rows)
    assert table.loc["no model: copy last shot", "vqav2 1-shot"] == "42.00 (n=2)"
    assert table.loc["no model: majority answer of the shots", "vqav2 1-shot"] == "30.00 (n=2)"
    assert table.loc["gpt2-frozen", "vqav2 1-shot"] == comparison(old).loc["gpt2-frozen", "vqav2 1-shot"]
    assert not any(i.startswith("no model") for i in comparison(old).index)


def test_precision_shows_only_where_the_runs_hold_several():
    rows = frame()
    assert "gpt2-frozen" in comparison(rows.assign(precision="fp32")).index
    rows["precision"] = ["fp32", "bf16", "fp32"]
    table = comparison(rows)
    assert table.loc["gpt2-frozen [fp32]", "vqav2 0-shot"] == "30.00 (n=1)"  # never averaged with bf16
    assert table.loc["gpt2-frozen [bf16]", "vqav2 0-shot"] == "32.00 (n=1)"


def test_the_leaderboard_does_not_depend_on_the_order_of_rows_or_samples(tmp_path):
    """Continuous scores over two seeds (where the order of seeds and of samples would move a bootstrap that is not
    seeded by its cell): the same CSV from the rows in either order and the samples written in either order."""
    import json

    import numpy as np

    from harness.results.tables import leaderboard

    rng = np.random.default_rng(5)
    cells = {("a", "real", seed): {f"q{i}": float(rng.random()) for i in range(40)} for seed in (0, 1)}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    frame = _runs_frame(tmp_path / "one", cells)
    shuffled = _runs_frame(tmp_path / "two", {k: dict(reversed(v.items())) for k, v in reversed(cells.items())})
    extra = dict(lm="gpt2", recipe="frozen", metric="CIDEr", partial=False, harness_version="1", created="2026")
    boards = []
    for runs in (frame, shuffled):
        runs = runs.assign(**extra, score=[100 * np.mean(list(json.loads(line)["score"] for line in
                                                             open(f"{d}/samples.jsonl"))) for d in runs["run_dir"]])  # fmt: skip
        boards.append(leaderboard(runs).to_csv(index=False))
    assert boards[0] == boards[1]
