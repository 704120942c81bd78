"""Run records in the results database: table, leaderboard export, re-scoring saved predictions."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.results.tables import LEADERBOARD_COLUMNS


def _run(fast_recipe, caplog, *extra: str) -> list[Path]:
    caplog.set_level("INFO")
    caplog.clear()
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet", *extra]
    assert main(args + [a for s in fast_recipe for a in ("--set", s)]) == 0
    return [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]


@pytest.mark.slow
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


def _shipped_home(root: Path, reverse: bool) -> Path:
    """The shipped frozen-mini run records in a home of their own; ``reverse``: every run folder renamed so that the
    index is rebuilt from them in the opposite order."""
    import os
    import tarfile

    from harness import paths

    with tarfile.open(paths.REPO_ROOT / "results" / "frozen-mini-v1-runs.tar.xz") as tar:
        tar.extractall(root, filter="data")
    if reverse:
        folders = sorted(p.parent for p in (root / "runs").glob("**/metrics.json"))
        for i, folder in enumerate(folders):
            os.rename(folder, folder.with_name(f"{len(folders) - i:04d}-{folder.name}"))
    return root


@pytest.mark.slow
def test_the_shipped_records_regenerate_byte_for_byte_in_any_index_order(tmp_path, monkeypatch, capsys):
    """Leaderboard, findings and compare from the shipped run records, indexed in one order and in the opposite one:
    the same bytes (every CI seeded by its cell); and no verdict stands on a Holm p at or above alpha."""
    out = {}
    for reverse in (False, True):
        home = _shipped_home(tmp_path / f"home-{reverse}", reverse)
        monkeypatch.setenv("HARNESS_HOME", str(home))
        assert main(["table", "--rebuild-index"]) == 0
        board, found = tmp_path / f"board-{reverse}.csv", tmp_path / f"findings-{reverse}.csv"
        assert main(["leaderboard", "--csv", str(board)]) == 0
        assert main(["findings", "--format", "csv", "--out", str(found)]) == 0
        capsys.readouterr()
        assert main(["compare", "--baseline", "smollm2-135m-frozen", "--format", "csv"]) == 0
        out[reverse] = (board.read_bytes(), found.read_bytes(), capsys.readouterr().out)
    assert out[False] == out[True]
    rows = list(csv.DictReader(io.StringIO(out[False][1].decode())))
    decided = [r for r in rows if r["verdict"] in ("holds", "does not hold") and r["claim"] != "a near zero"]
    assert decided and all(float(r["p_holm"]) < 0.05 for r in decided)
    assert any(r["control"] == "failed" for r in rows)  # the shipped supervised ceiling sits below frozen
