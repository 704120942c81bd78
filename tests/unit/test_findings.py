"""harness findings on constructed runs: verdicts, pairing on shared ids and seeds, rows per group, not measured,
and one-line errors for a bad findings file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import HarnessError
from harness.results.database import ResultsDB
from harness.results.findings import findings_path, load_findings, verdict
from harness.results.findings_table import absolute, markdown, measure, paired
from harness.results.rundir import RunDir


@pytest.mark.parametrize(
    ("claim", "low", "high", "p", "expected"),
    [
        ("b > a", 1.0, 9.0, 0.01, "holds"),
        ("b > a", 1.0, 9.0, 0.371, "not shown"),  # the CI clears 0, the corrected p does not: nothing shown
        ("b > a", 1.0, 9.0, 0.05, "not shown"),  # p must be below alpha
        ("b > a", 1.0, 9.0, None, "not shown"),  # no test: nothing shown
        ("b > a", -3.0, 4.0, 0.01, "not shown"),
        ("b > a", 0.0, 4.0, 0.01, "not shown"),  # 0 inside the CI: nothing shown
        ("b > a", -9.0, -1.0, 0.01, "does not hold"),
        ("b > a", -9.0, -1.0, 0.39, "not shown"),  # the other side, but not beyond the correction
        ("b > a", -2.0, 0.0, 0.01, "does not hold"),  # no effect the claim makes is inside the CI
        ("b > a", 0.0, 0.0, 1.0, "not shown"),  # the sides scored the same on every item: no difference shown
        ("a > b", -9.0, -1.0, 0.01, "holds"),  # the CI is of B - A
        ("a > b", 1.0, 9.0, 0.01, "does not hold"),
        ("a > b", -1.0, 1.0, 0.01, "not shown"),
        ("a near zero", 0.0, 4.9, None, "holds"),
        ("a near zero", 1.0, 5.0, None, "not shown"),  # the upper end must stay below the threshold
        ("a near zero", 5.0, 9.0, None, "does not hold"),
        ("b > a", None, None, None, "not measured"),
        ("a near zero", float("nan"), float("nan"), None, "not measured"),
    ],
)
def test_verdicts(claim, low, high, p, expected):
    assert verdict(claim, low, high, p=p) == expected


def test_margin_threshold_and_alpha():
    assert verdict("b > a", 1.0, 9.0, margin=2.0, p=0.01) == "not shown"
    assert verdict("b > a", 3.0, 9.0, margin=2.0, p=0.01) == "holds"
    assert verdict("b > a", -1.0, 2.0, margin=2.0, p=0.01) == "does not hold"
    assert verdict("a near zero", 1.0, 9.0, threshold=10.0) == "holds"
    assert verdict("b > a", 1.0, 9.0, p=0.03, alpha=0.01) == "not shown"
    assert verdict("b > a", 1.0, 9.0, p=0.03, alpha=0.1) == "holds"


@pytest.mark.parametrize("alpha", ["0", "1.5", "1", "-0.1", "nan"])
@pytest.mark.parametrize("command", [["findings"], ["compare", "--baseline", "gpt2-frozen"]])
def test_alpha_outside_zero_one_is_a_one_line_error(tmp_path, monkeypatch, capsys, command, alpha):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    assert main([*command, "--alpha", alpha]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--alpha must lie between 0 and 1" in err and alpha.lstrip("-") in err, err


@pytest.mark.parametrize("command", [["findings"], ["compare", "--baseline", "x"], ["leaderboard", "--csv", "x.csv"]])
def test_a_bogus_split_is_a_one_line_error(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as stop:
        main([*command, "--split", "bogus"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and "invalid choice: 'bogus'" in err, err


def test_pairing_takes_only_the_items_both_sides_hold():
    a = {("0/0", "q1"): 1.0, ("0/0", "q2"): 0.0, ("0/0", "q3"): 1.0, ("0/1", "q1"): 0.0}
    b = {("0/0", "q1"): 1.0, ("0/0", "q2"): 1.0, ("0/0", "q9"): 0.0, ("0/2", "q1"): 1.0}
    out = paired(a, b)
    assert out["n"] == 2 and out["n_seeds"] == 1  # q1 and q2 of seed 0; q3, q9 and seeds 1, 2 have no partner
    assert out["effect"] == pytest.approx(50.0) and out["test"] == "mcnemar_exact"
    assert paired(a, {("0/1", "q2"): 1.0}) == {"n": 0, "n_seeds": 0}


def test_several_seeds_give_the_mean_of_seed_means():
    a = {**{("0/0", f"q{i}"): 0.0 for i in range(4)}, **{("0/1", f"q{i}"): 0.0 for i in range(2)}}
    b = {**{("0/0", f"q{i}"): float(i == 0) for i in range(4)}, **{("0/1", f"q{i}"): 1.0 for i in range(2)}}
    out = paired(a, b)
    assert out["n"] == 6 and out["n_seeds"] == 2
    assert out["effect"] == pytest.approx(100 * (0.25 + 1.0) / 2)  # not the pooled mean 3/6
    assert pd_isna(out["ci95_low"]) and pd_isna(out["ci95_high"])  # 4 items: too few for an interval
    score = absolute(b)
    assert score["effect"] == pytest.approx(62.5) and score["n"] == 6 and pd_isna(score["ci95_low"])
    # Ten items, each as in seed 0/0 above, with seed 0/1 on the first two: the same means, now with a CI around them.
    a10 = {**{("0/0", f"q{i}"): 0.0 for i in range(10)}, **{("0/1", f"q{i}"): 0.0 for i in range(5)}}
    b10 = {**{("0/0", f"q{i}"): float(i % 4 == 0) for i in range(8)}, ("0/0", "q8"): 0.0, ("0/0", "q9"): 0.0,
           **{("0/1", f"q{i}"): 1.0 for i in range(5)}}  # fmt: skip
    out = paired(a10, b10)
    assert out["n_items"] == 10 and out["effect"] == pytest.approx(100 * (0.2 + 1.0) / 2)
    assert out["ci95_low"] <= out["effect"] <= out["ci95_high"]


def _run(root: Path, model: str, images: str, shots: int, seed: int, scores: dict[str, float],
         task: str = "easyvqa-tiny", **naming) -> Path:  # fmt: skip
    """A finished run folder written by hand: config.json, metrics.json and samples.jsonl."""
    lm, recipe = model.split("-", 1) if model.startswith("gpt2") else model.rsplit("-", 1)
    folder = root / "runs" / f"{model}-{images}-{shots}-{seed}-{task}-{naming.get('induction')}"
    folder.mkdir(parents=True)
    config = {"task": task, "task_version": 1, "task_fingerprint": f"tf-{naming.get('induction')}",
              "task_config": {"name": task, "options": {"inner_shots": shots, **naming}},
              "model": {"lm": lm, "recipe": {"name": recipe}}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    mean = 100 * sum(scores.values()) / len(scores)
    metrics = {"task": task, "model": model, "model_fingerprint": f"mf-{model}", "shots": shots, "seed": seed,
               "images": images, "metric": "VQA accuracy", "score": mean, "ci95": [0, 100], "n": len(scores),
               "limit": 0, "train_seed": 0, **({"repeats": 1, **naming} if naming else {})}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "samples.jsonl").write_text("".join(json.dumps({"id": k, "score": v}) + "\n" for k, v in scores.items()))
    return folder


def _frame(root: Path):
    db = ResultsDB(root / "results.sqlite")
    for metrics in sorted((root / "runs").glob("*/metrics.json")):
        db.index(RunDir(metrics.parent))
    frame = db.frame()
    db.close()
    return frame


def test_rows_per_group_effects_and_not_measured(tmp_path):
    ids = [f"q{i}" for i in range(10)]
    for seed in (0, 1):
        _run(tmp_path, "gpt2-frozen", "real", 1, seed, {**{q: float(i < 7) for i, q in enumerate(ids)}, "q10": 0.0})
        # Black: q9 missing and an id real never had: only the 10 shared ids pair.
        black = {**{q: float(i < 2) for i, q in enumerate(ids[:9])}, "q10": 0.0, "x": 1.0}
        _run(tmp_path, "gpt2-frozen", "black", 1, seed, black)
    _run(tmp_path, "gpt2-frozen", "real", 0, 0, {q: 0.0 for q in ids})
    _run(tmp_path, "gpt2-scratch", "real", 0, 0, {q: 0.0 for q in ids})
    _run(tmp_path, "gpt2-finetuned", "real", 1, 0, {q: float(i < 7) for i, q in enumerate(ids)})
    for induction, right in ((False, 2), (True, 8)):
        _run(tmp_path, "gpt2-frozen", "real", 1, 0, {q: float(i < right) for i, q in enumerate(ids)},
             task="emoji-open-tiny", ways=2, induction=induction)  # fmt: skip
    table, notes = measure(_frame(tmp_path), load_findings(findings_path("frozen")))
    rows = {(r.finding, r.cells): r for r in table.itertuples()}

    black = rows[("images beat blacked-out images", "gpt2-frozen easyvqa-tiny 1-shot: real vs blacked out")]
    assert (black.n, black.n_seeds, black.n_items) == (20, 2, 10) and black.effect == pytest.approx(100 * 5 / 10)
    # The two seeds are copies: 10 items, 5 discordant (McNemar 2 / 2**5), not 18 independent ones (2 / 2**10). The CI
    # clears 0, the corrected p does not: nothing shown, with the effect the cell could have detected.
    assert black.ci95_low > 0 and black.p_value == pytest.approx(2 / 32) and black.verdict == "not shown"
    assert black.detectable > 0 and black.p_holm >= black.p_value
    few = rows[("few-shot beats zero-shot", "gpt2-frozen easyvqa-tiny, real images: 1-shot vs 0-shot")]
    assert (few.n, few.n_seeds) == (10, 1) and few.effect == pytest.approx(70.0)  # seed 1 has no 0-shot run
    scratch = rows[("scratch is near zero", "gpt2-scratch easyvqa-tiny 0-shot, real images")]
    assert scratch.effect == 0.0 and scratch.verdict == "holds" and pd_isna(scratch.p_value)
    same = rows[("frozen generalises better than finetuned", "easyvqa-tiny 1-shot, real images: gpt2-frozen vs "
                 "gpt2-finetuned")]  # fmt: skip
    assert same.effect == 0.0 and same.verdict == "not shown" and same.n == 10  # paired on seed 0 only; p = 1
    induction = rows[("task induction helps open-ended naming",
                      "gpt2-frozen emoji-open-tiny 2-way 1-shot, real images: +induction vs no induction")]  # fmt: skip
    assert induction.effect == pytest.approx(60.0) and induction.ci95_low > 0
    assert induction.verdict == ("holds" if induction.p_holm < 0.05 else "not shown")
    # Cells absent: one row each, not measured, saying which side has no runs.
    for name in ("images beat shuffled images", "a larger LM helps", "train-blind is below frozen with images"):
        (row,) = [r for r in table.itertuples() if r.finding == name]
        assert row.verdict == "not measured" and row.n == 0 and "no runs of" in row.cells
    # Holm over the paired rows that have a p-value (not the absolute one, not the unmeasured ones).
    tested = table[table["p_value"].notna()]
    assert len(tested) == 4 and (tested["p_holm"] >= tested["p_value"]).all()
    assert any("family and size are confounded" in n for n in notes)
    text = markdown(table, notes)
    assert "| +50.00 " in text and "not measured" in text and "Holm-adjusted over the 4 p-value(s)" in text
    assert "| 20 (10 items x 2 seeds) " in text and "not shown (could detect ±" in text
    assert "n too small" not in text  # every measured row has 10 items or more


def pd_isna(value) -> bool:
    return value != value


def test_no_runs_at_all_is_every_finding_not_measured(tmp_path):
    import pandas as pd

    table, _ = measure(pd.DataFrame(), load_findings(findings_path("frozen")))
    assert len(table) == len(load_findings(findings_path("frozen")).findings)
    assert set(table["verdict"]) == {"not measured"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("findings: [{name: x, claim: b > a, a: {imgs: black}, b: {images: real}}]", "findings[0] (x): a: unknown field 'imgs'"),
        ("findings: [{name: x, claim: a >> b, a: {images: black}, b: {images: real}}]", "field 'claim' must be one of"),
        ("findings: [{name: x, claim: b > a, a: {task: easyvqa}, b: {images: real}}]", "field 'task' belongs under where"),
        ("findings: [{name: x, claim: b > a, a: {images: dark}, b: {images: real}}]", "unknown image condition 'dark'"),
        ("findings: [{name: x, claim: b > a, a: {shots: one}, b: {shots: 1}}]", "a: field 'shots' must be"),
        ("findings: [{name: x, claim: a near zero, a: {recipe: scratch}, b: {recipe: frozen}}]", "field 'b'"),
        ("findings: [{name: x, claim: b > a, where: {recipe: frozen}, a: {}}]", "field 'b': a paired claim"),
        ("findings: [{name: x, claim: b > a, a: {images: black}, b: {images: real}, treshold: 3}]", "'treshold'"),
        ("findings: []", "field 'findings' is empty"),
        ("findngs: []", "unknown field 'findngs'"),
        ("findings: [{name: x, claim: b > a\n", "YAML syntax error"),
    ],
)  # fmt: skip
def test_bad_findings_files_are_one_line_errors_naming_file_and_field(tmp_path, capsys, text, says):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError, match="mine.yaml"):
        load_findings(path)
    assert main(["findings", "--findings", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and says in err, err


def test_an_unknown_findings_name_lists_the_known_ones(capsys):
    assert main(["findings", "--findings", "frozn"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "known: frozen" in err


def test_the_shipped_findings_cover_frozens_claims():
    spec = load_findings(findings_path("frozen"))
    assert findings_path("frozen").parent.name == "findings"
    assert len(spec.findings) >= 9
    claims = {f.name: f for f in spec.findings}
    assert claims["scratch is near zero"].absolute and claims["scratch is near zero"].threshold == 5.0
    assert "confounded" in claims["a larger LM helps"].note


_LIGHT = """
import sys
from harness.cli.main import main
print("exit", main(["findings", "--format", "csv"]), "imported",
      sorted(m for m in ("torch", "transformers", "timm") if m in sys.modules))
"""


def test_findings_start_without_torch(tmp_path):
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    _run(home, "gpt2-frozen", "real", 1, 0, {"q0": 1.0, "q1": 1.0})
    _run(home, "gpt2-frozen", "black", 1, 0, {"q0": 0.0, "q1": 1.0})
    _frame(home)  # indexed
    env = {**os.environ, "HARNESS_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", _LIGHT], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.splitlines()[-1] == "exit 0 imported []", done.stdout + done.stderr
    assert "gpt2-frozen easyvqa-tiny 1-shot: real vs blacked out,2,1,50.0" in done.stdout


def test_a_naming_setting_is_not_a_task_variant(tmp_path):
    """Ways, inner shots, induction, repeats and the answer mode are cell fields of their own (the tables name
    them): runs that differ only there are one task variant, with no '[task ...]' in their labels; any other
    --task-set field is a variant."""
    from harness.results.findings_table import _variant

    def run(name: str, **options) -> str:
        folder = tmp_path / name
        folder.mkdir()
        config = {"task_config": {"name": "emoji-open", "prompt": "Q:", "options": {"ways": 2, **options}},
                  "data_version": "emoji==1"}  # fmt: skip
        (folder / "config.json").write_text(json.dumps(config))
        return str(folder)

    plain = _variant(run("plain"))
    assert plain == _variant(run("ranked", answer="rank")) == _variant(run("five", ways=5, induction=True))
    assert plain != _variant(run("other", query_vendor="google"))


def _recipe(folder: Path, **recipe) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"]["recipe"] = recipe
    (folder / "config.json").write_text(json.dumps(config))


def test_a_failed_control_one_trained_model_per_side_and_what_else_the_recipes_change(tmp_path):
    ids = [f"q{i}" for i in range(30)]
    frozen = _run(tmp_path, "gpt2-frozen", "real", 1, 0, {q: float(i < 20) for i, q in enumerate(ids)})
    supervised = _run(tmp_path, "gpt2-supervised", "real", 1, 0, {q: float(i < 2) for i, q in enumerate(ids)})
    _recipe(frozen, name="frozen", aux_embed=1.0, steps=120, train_text="captions", lr=3e-4)
    # train_text, question_types, steps and the dropped embedding loss are what supervised is about (its file makes
    # them differ from frozen's); lr was changed beside them.
    _recipe(supervised, name="supervised", aux_embed=0.0, steps=480, train_text="vqa", seed=7, lr=1e-3)
    table, notes = measure(_frame(tmp_path), load_findings(findings_path("frozen")))
    (row,) = [r for r in table.itertuples() if r.finding == "the supervised upper bound beats frozen (control)"]
    assert row.verdict == "does not hold" and row.control == "failed" and row.p_holm < 0.05
    assert (row.trained_a, row.trained_b) == (1, 1) and row.also_differ == "lr"
    text = markdown(table, notes)
    line = next(x for x in text.splitlines() if x.startswith("| the supervised upper bound"))
    assert "does not hold: **control failed** (1 trained model per side)" in line
    assert any(n.startswith("control failed: the supervised upper bound beats frozen (control), in 1 cell(s): the "
                            "comparisons it guards (frozen generalises") for n in notes)  # fmt: skip
    assert any(n.endswith("these models also differ in: lr") for n in notes)


def test_a_control_that_holds_is_not_flagged_and_guards_must_name_findings(tmp_path):
    ids = [f"q{i}" for i in range(30)]
    _run(tmp_path, "gpt2-frozen", "real", 1, 0, {q: float(i < 2) for i, q in enumerate(ids)})
    _run(tmp_path, "gpt2-supervised", "real", 1, 0, {q: float(i < 25) for i, q in enumerate(ids)})
    table, notes = measure(_frame(tmp_path), load_findings(findings_path("frozen")))
    (row,) = [r for r in table.itertuples() if r.finding == "the supervised upper bound beats frozen (control)"]
    assert row.verdict == "holds" and row.control == "held" and not any("control failed" in n for n in notes)
    path = tmp_path / "mine.yaml"
    path.write_text("findings: [{name: x, claim: b > a, a: {images: black}, b: {images: real}, control: true, "
                    "guards: [y]}]")  # fmt: skip
    with pytest.raises(HarnessError, match="field 'guards': no finding named 'y'"):
        load_findings(path)
    path.write_text("findings: [{name: x, claim: b > a, a: {images: black}, b: {images: real}, guards: [x]}]")
    with pytest.raises(HarnessError, match="only a control"):
        load_findings(path)


def test_a_finding_can_compare_a_model_with_a_no_model_baseline(tmp_path):
    ids = [f"q{i}" for i in range(40)]
    folder = _run(tmp_path, "gpt2-frozen", "real", 1, 0, {q: float(i < 30) for i, q in enumerate(ids)})
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "baselines": {"copy_last": 25.0}}))
    samples = [{"id": q, "score": float(i < 30), "baselines": {"copy_last": float(i < 10)}} for i, q in enumerate(ids)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    path = tmp_path / "mine.yaml"
    path.write_text("findings: [{name: beats copying, claim: b > a, where: {recipe: frozen}, "
                    "a: {images: 'baseline:copy_last'}, b: {images: real}}]")  # fmt: skip
    table, _ = measure(_frame(tmp_path), load_findings(path))
    (row,) = table.itertuples()
    assert row.cells == "gpt2-frozen easyvqa-tiny 1-shot: real vs no model: copy last shot"
    assert row.effect == pytest.approx(50.0) and row.n == 40 and row.verdict == "holds"


def test_findings_take_test_runs_unless_another_split_is_asked(tmp_path, monkeypatch, capsys):
    import shutil

    ids = [f"q{i}" for i in range(20)]
    for images, right in (("real", 15), ("black", 5)):
        test = _run(tmp_path, "gpt2-frozen", images, 1, 0, {q: float(i < right) for i, q in enumerate(ids)})
        dev = test.with_name(test.name + "-dev")
        shutil.copytree(test, dev)
        metrics = json.loads((dev / "metrics.json").read_text())
        (dev / "metrics.json").write_text(json.dumps({**metrics, "split": "dev"}))
    _frame(tmp_path)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    path = tmp_path / "mine.yaml"
    path.write_text("findings: [{name: images, claim: b > a, a: {images: black}, b: {images: real}}]")
    cells = {}
    for split in ("test", "dev", "all"):
        assert main(["findings", "--findings", str(path), "--format", "csv", "--split", split]) == 0
        cells[split] = [line.split(",")[2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert cells["test"] == ["gpt2-frozen easyvqa-tiny 1-shot: real vs blacked out"]
    assert cells["dev"] == ["gpt2-frozen easyvqa-tiny [dev] 1-shot: real vs blacked out"]
    assert sorted(cells["all"]) == sorted(cells["test"] + cells["dev"])
    assert main(["findings", "--findings", str(path), "--format", "csv"]) == 0  # test by default
    assert [line.split(",")[2] for line in capsys.readouterr().out.splitlines()[1:]] == cells["test"]


def test_a_setting_a_run_does_not_record_reads_as_its_default():
    """Runs recorded before naming's ``query`` setting (and runs at its default, which record nothing) are the
    new-query-image cells: a findings side ``query: new`` takes them, ``query: support`` does not."""
    from harness.results.findings_table import _value

    old = {"kind": "naming", "settings": (("ways", 2), ("induction", False))}
    identical = {"kind": "naming", "settings": (("ways", 2), ("query", "support"))}
    assert _value(old, "query") == "new" and _value(identical, "query") == "support"
    assert _value(old, "ways") == 2 and _value(old, "repeats") is None  # no default: not recorded is None
    assert _value({"kind": "vqa", "settings": ()}, "query") is None  # a kind without the setting


def test_a_dev_run_is_labelled_dev_and_nothing_else(tmp_path):
    """A dev run's task config differs from a test run's in its split only: its label is the task's with "[dev]",
    not also the split field that tells two task settings apart ("[split='dev']")."""
    ids = [f"q{i}" for i in range(5)]
    _run(tmp_path, "gpt2-frozen", "real", 1, 0, {q: 1.0 for q in ids})
    dev = _run(tmp_path / "dev", "gpt2-frozen", "real", 1, 0, {q: 0.0 for q in ids})
    config = json.loads((dev / "config.json").read_text())
    config["task_fingerprint"], config["task_config"]["split"] = "tf-dev", "dev"
    (dev / "config.json").write_text(json.dumps(config))
    metrics = json.loads((dev / "metrics.json").read_text())
    (dev / "metrics.json").write_text(json.dumps({**metrics, "split": "dev"}))
    (tmp_path / "runs" / "dev").mkdir()
    dev.rename(tmp_path / "runs" / "dev-run")
    assert sorted(_frame(tmp_path)["task"]) == ["easyvqa-tiny", "easyvqa-tiny [dev]"]


def test_naming_cells_at_other_inner_shots_keep_the_tasks_label(tmp_path):
    """Runs of one naming task at 1 and 3 inner shots differ in their task fingerprint, but the inner shots are the
    cell's shot count, shown in its own column: no "[inner_shots=3]" in the label. Two runs of one cell that differ
    elsewhere are still told apart."""
    import pandas as pd

    from harness.results.tasklabels import distinguish

    def run(name: str, prompt: str = "Question: What is this? Answer: This is a", **options) -> str:
        (tmp_path / name).mkdir()
        task = {"name": "emoji-open", "prompt": prompt, "options": {"ways": 2, **options}}
        (tmp_path / name / "config.json").write_text(json.dumps({"task_config": task, "data_version": "emoji==1"}))
        return str(tmp_path / name)

    dirs = [run("one", inner_shots=1), run("three", inner_shots=3), run("other", prompt="Q:", inner_shots=3)]
    frame = pd.DataFrame({"task": ["emoji-open 2-way"] * 3, "task_name": ["emoji-open"] * 3, "kind": ["naming"] * 3,
                          "task_fingerprint": ["a", "b", "c"], "run_dir": dirs})  # fmt: skip
    labels = distinguish(frame)
    assert labels[0] == labels[1] == "emoji-open 2-way" and labels[2] == "emoji-open 2-way [prompt='Q:']"
