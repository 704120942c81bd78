"""harness findings on a tiny sweep of real runs: the rows it finds, effects equal to the paired differences computed
by hand from the samples, verdicts from the CIs, and the same table as CSV, Markdown and --out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.results.findings import verdict

GRID = """
description: tiny grid for the findings test
tasks: [easyvqa-tiny]
models: [gpt2-frozen, gpt2-train-blind]
shots: [0, 1]
seeds: [0, 1]
images: [real, black, shuffled]
limit: 10
set: {steps: 2, batch_size: 2, pairs: 2, image_size: 32, save_every: 1, train_data: tiny-shapes, seed: 3}
"""


def _by_hand(home: Path, a: dict, b: dict) -> tuple[float, int]:
    """Mean over seeds of the mean paired difference B - A (points) over the ids both runs of a seed hold."""
    runs: dict[tuple, dict[str, float]] = {}
    for metrics_path in (home / "runs").glob("**/metrics.json"):
        m = json.loads(metrics_path.read_text())
        samples = [json.loads(line) for line in (metrics_path.parent / "samples.jsonl").read_text().splitlines()]
        runs[(m["model"], m["images"], m["shots"], m["seed"])] = {s["id"]: s["score"] for s in samples}
    means, n = [], 0
    for seed in (0, 1):
        ra = runs[(a["model"], a["images"], a["shots"], seed)]
        rb = runs[(b["model"], b["images"], b["shots"], seed)]
        shared = sorted(ra.keys() & rb.keys())
        means.append(sum(rb[i] - ra[i] for i in shared) / len(shared))
        n += len(shared)
    return 100 * sum(means) / len(means), n


# How many of a run's items to mark right, by (model, images, shots): the tiny models get none right, so the test
# gives some items a score of 1 in the run folders' samples (which are what findings read) for effects other than 0.
RIGHT = {
    ("gpt2-frozen", "real", 1): 5,
    ("gpt2-frozen", "real", 0): 2,
    ("gpt2-frozen", "black", 1): 1,
    ("gpt2-frozen", "shuffled", 1): 3,
    ("gpt2-train-blind", "real", 0): 1,
    ("gpt2-train-blind", "real", 1): 2,
}


def _score_by_hand(home: Path) -> None:
    for metrics_path in (home / "runs").glob("**/metrics.json"):
        m = json.loads(metrics_path.read_text())
        path = metrics_path.parent / "samples.jsonl"
        samples = [json.loads(line) for line in path.read_text().splitlines()]
        right = RIGHT.get((m["model"], m["images"], m["shots"]), 0)
        samples = [{**s, "score": float(i < right)} for i, s in enumerate(samples)]
        if (m["model"], m["images"], m["shots"], m["seed"]) == ("gpt2-frozen", "black", 1, 1):
            samples = samples[1:]  # an item one side lacks: left out of the pairs
        path.write_text("".join(json.dumps(s) + "\n" for s in samples))


@pytest.mark.slow
def test_findings_on_a_tiny_sweep(tiny_hub, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))  # this sweep's runs only
    grid = tmp_path / "tiny.yaml"
    grid.write_text(GRID)
    assert main(["sweep", str(grid), "--quiet"]) == 0
    capsys.readouterr()
    _score_by_hand(home)
    assert main(["findings", "--task", "easyvqa-tiny", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    rows = {(r["finding"], r["cells"]): r for r in csv.DictReader(io.StringIO(text))}

    frozen = {"model": "gpt2-frozen", "shots": 1}
    expected = {
        ("images beat blacked-out images", "gpt2-frozen easyvqa-tiny 1-shot (first 10): real vs blacked out"):
            ({**frozen, "images": "black"}, {**frozen, "images": "real"}),
        ("images beat shuffled images", "gpt2-frozen easyvqa-tiny 1-shot (first 10): real vs shuffled"):
            ({**frozen, "images": "shuffled"}, {**frozen, "images": "real"}),
        ("few-shot beats zero-shot", "gpt2-frozen easyvqa-tiny (first 10), real images: 1-shot vs 0-shot"):
            ({**frozen, "images": "real", "shots": 0}, {**frozen, "images": "real"}),
        **{("train-blind is below frozen with images",
            f"easyvqa-tiny {s}-shot (first 10), real images: gpt2-frozen vs gpt2-train-blind"):
           ({"model": "gpt2-train-blind", "images": "real", "shots": s}, {"model": "gpt2-frozen", "images": "real",
                                                                         "shots": s}) for s in (0, 1)},
    }  # fmt: skip
    measured = {k: r for k, r in rows.items() if r["verdict"] != "not measured"}
    assert set(measured) == set(expected), sorted(measured)
    for key, (a, b) in expected.items():
        row = rows[key]
        effect, n = _by_hand(home, a, b)
        assert float(row["effect"]) == pytest.approx(effect, abs=1e-3), key
        assert (int(row["n"]), int(row["n_seeds"])) == (n, 2) and n == (19 if "blacked" in key[1] else 20)
        low, high = float(row["ci95_low"]), float(row["ci95_high"])
        assert low <= float(row["effect"]) <= high
        assert row["verdict"] == verdict("b > a", low, high, p=float(row["p_holm"]))
        assert int(row["n_items"]) == 10  # the draws (seeds) of one item are one cluster
        assert float(row["p_holm"]) >= float(row["p_value"])
    # What this sweep did not run: one row each, not measured.
    for name in ("scratch is near zero", "a larger LM helps", "frozen generalises better than finetuned",
                 "task induction helps open-ended naming", "more inner shots help naming"):  # fmt: skip
        (row,) = [r for (f, _), r in rows.items() if f == name]
        assert row["verdict"] == "not measured" and row["n"] == "0" and row["effect"] == ""

    assert main(["findings", "--task", "easyvqa-tiny"]) == 0
    table = capsys.readouterr().out
    line = next(x for x in table.splitlines() if "1-shot (first 10): real vs blacked out" in x)
    key = ("images beat blacked-out images", "gpt2-frozen easyvqa-tiny 1-shot (first 10): real vs blacked out")
    assert f"| {float(rows[key]['effect']):+.2f} " in line and "| 19 (10 items x 2 seeds) " in line
    assert "Holm-adjusted over the 5 p-value(s)" in table and "family and size are confounded" in table
    out = tmp_path / "findings.csv"
    assert main(["findings", "--task", "easyvqa-tiny", "--format", "csv", "--out", str(out)]) == 0
    assert out.read_text() == text and capsys.readouterr().out.strip() == f"{out}: {len(rows)} rows"
