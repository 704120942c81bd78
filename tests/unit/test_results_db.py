"""The results index: idempotent by run fingerprint, one row per cell and seed, safe with two writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from harness.results.database import ResultsDB
from harness.results.rundir import RunDir


def fake_run(root: Path, key: str, score: float, seed: int = 0, recipe: str = "frozen") -> RunDir:
    run = RunDir(root / key)
    run.start(
        {"task": "t", "task_version": 1, "task_fingerprint": "tf", "model": {"lm": "gpt2", "recipe": {"name": recipe}}}
    )
    run.write_metrics({"task": "t", "model": f"gpt2-{recipe}", "model_fingerprint": "mf", "shots": 0, "seed": seed,
                       "images": "real", "metric": "VQA accuracy", "score": score, "ci95": [0, 1], "n": 10, "limit": 0})  # fmt: skip
    return run


def test_same_run_is_one_row_and_a_newer_record_of_a_cell_wins(tmp_path):
    db = ResultsDB(tmp_path / "r.sqlite")
    old = fake_run(tmp_path, "aaa", 10.0)
    db.index(old)
    db.index(old)
    assert len(db.frame()) == 1
    db.index(fake_run(tmp_path, "bbb", 12.0))  # the same cell and seed, recorded again (another record format)
    frame = db.frame()
    assert len(frame) == 1 and frame.loc[0, "score"] == 12.0
    db.index(fake_run(tmp_path, "ccc", 14.0, seed=1))
    assert sorted(db.frame()["score"]) == [12.0, 14.0]
    db.close()


def _writer(args: tuple[str, str]) -> None:
    root, key = args
    db = ResultsDB(Path(root) / "r.sqlite")
    db.index(fake_run(Path(root), key, 1.0, seed=int(key[1:])))
    db.close()


def test_two_processes_indexing_at_once_both_land(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_writer, [(str(tmp_path), f"s{i}") for i in range(8)])
    db = ResultsDB(tmp_path / "r.sqlite")
    assert len(db.frame()) == 8
    assert db._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


_LIGHT = """
import sys
from harness.cli.main import main
codes = [main(["table"]), main(["compare", "--baseline", "gpt2-frozen"]), main(["leaderboard", "--csv", sys.argv[1]])]
print("exit", codes, "imported", sorted(m for m in ("torch", "transformers", "timm") if m in sys.modules))
"""


def test_commands_that_read_results_start_without_torch(tmp_path):
    """table, compare and leaderboard read the results database: they import neither torch nor
    transformers (seconds of start-up on a small CPU), so a user's loop over tables stays quick."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    db = ResultsDB(home / "results.sqlite")
    for i, (recipe, score) in enumerate([("frozen", 10.0), ("frozen", 12.0), ("scratch", 5.0)]):
        run = fake_run(home / "runs", f"r{i}", score, seed=i % 2, recipe=recipe)
        (run.folder / "samples.jsonl").write_text("".join(f'{{"id": "q{q}", "score": {q % 2}}}\n' for q in range(10)))
        db.index(run)
    db.close()
    env = {**os.environ, "HARNESS_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", _LIGHT, str(tmp_path / "board.csv")], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "exit [0, 0, 0] imported []", done.stdout + done.stderr
    assert "| gpt2-frozen" in done.stdout and "11.00" in done.stdout and (tmp_path / "board.csv").is_file()


def test_split_and_baselines_are_columns_read_back_and_an_older_database_gains_them(tmp_path):
    import json
    import sqlite3

    from harness.results.database import SCHEMA
    from harness.results.records import RunRecord

    run = fake_run(tmp_path, "dev-run", 10.0)
    metrics = json.loads(run.metrics_path.read_text())
    run.write_metrics({**metrics, "split": "dev", "baselines": {"copy_last": 31.5}})
    record = run.record()
    assert record.split == "dev" and record.baselines == {"copy_last": 31.5}
    old = RunRecord.from_json(metrics)  # a record from before either field
    assert old.split == "" and old.baselines == {} and "split" not in old.to_json() and "baselines" not in old.to_json()
    old_schema = SCHEMA.replace(",\n    split TEXT,\n    baselines TEXT", "")
    assert "split" not in old_schema
    db = sqlite3.connect(tmp_path / "r.sqlite")
    db.execute(old_schema)
    db.commit()
    db.close()
    results = ResultsDB(tmp_path / "r.sqlite")
    results.index(run)
    stored = results._db.execute("SELECT split, baselines FROM runs").fetchone()
    frame = results.frame()
    results.close()
    assert stored == ("dev", '{"copy_last": 31.5}')
    assert frame.loc[0, "split"] == "dev" and frame.loc[0, "task"] == "t [dev]"
    assert frame.loc[0, "baselines"] == {"copy_last": 31.5}
