"""Run records in the results database: table, leaderboard export, re-scoring saved predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from harness.cli.main import main
from harness.results.tables import LEADERBOARD_COLUMNS


def _run(fast_recipe, caplog, *extra: str) -> list[Path]:
    caplog.set_level("INFO")
    caplog.clear()
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet", *extra]
    assert main(args + [a for s in fast_recipe for a in ("--set", s)]) == 0
    return [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]


def test_table_leaderboard_and_rescore(tiny_hub, fast_recipe, caplog, capsys, tmp_path):
    runs = []
    for seed in ("0", "1"):
        runs += _run(fast_recipe, caplog, "--shots", "1", "--seed", seed, "--limit", "12")
    assert len(runs) == 4  # 2 seeds x (real, black)
    assert json.loads((runs[0] / "metrics.json").read_text())["partial"] is True
    capsys.readouterr()

    assert main(["table", "--task", "easyvqa-tiny"]) == 0
    out = capsys.readouterr().out
    assert "gpt2-frozen (images blacked out)" in out and "easyvqa-tiny 1-shot" in out
    assert "(n=2)*" in out  # two seeds, partial runs marked

    board_path = tmp_path / "leaderboard.csv"
    assert main(["leaderboard", "--csv", str(board_path)]) == 0
    rows = list(csv.DictReader(board_path.open()))
    assert list(rows[0]) == LEADERBOARD_COLUMNS
    ours = [
        r for r in rows if (r["task"], r["shots"], r["model"], r["limit"]) == ("easyvqa-tiny", "1", "gpt2-frozen", "12")
    ]
    assert {r["images"] for r in ours} == {"real", "black"}
    for r in ours:
        assert r["n_seeds"] == "2" and r["seeds"] == "0 1" and r["n_samples"] == "24" and r["partial"] == "True"
        assert float(r["ci95_low"]) <= float(r["mean"]) <= float(r["ci95_high"])

    # Re-scoring: a saved prediction fixed by hand changes the score; the metric code runs, not the model.
    folder = runs[0]
    metrics = json.loads((folder / "metrics.json").read_text())
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert main(["score", str(folder)]) == 0
    assert "unchanged" in capsys.readouterr().out
    wrong = [s for s in samples if s["score"] == 0.0]
    assert wrong, "the tiny model should miss some questions"
    wrong[0]["prediction"] = wrong[0]["references"][0]
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    assert main(["score", str(folder)]) == 0
    rescored = json.loads((folder / "metrics.json").read_text())
    assert rescored["score"] > metrics["score"]
    assert f"{metrics['score']} -> {rescored['score']}" in capsys.readouterr().out
