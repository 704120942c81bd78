"""A task kind owns the settings that make a table cell: records, the results database, the tables and the findings
carry and label whatever a kind declares, and read old run records in today's shape."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from harness.config import TaskConfig
from harness.kinds.base import KINDS, CellSetting, TaskKind
from harness.results.database import ResultsDB
from harness.results.findings import load_findings
from harness.results.findings_table import measure
from harness.results.records import RunRecord, upgrade
from harness.results.rundir import RunDir
from harness.results.tables import comparison, leaderboard


class Toy(TaskKind):
    """A kind with one cell setting of its own, declared here and nowhere else."""

    name = "toy"
    options = {"level": 1, "colour": "red"}
    cell_settings = (
        CellSetting("level", int, lambda level: f" level {level}", lambda level: f"at level {level}"),
        CellSetting("colour", str, lambda colour: "" if colour == "red" else f" in {colour}"),
    )


@pytest.fixture
def toy(monkeypatch):
    kind = Toy()
    monkeypatch.setitem(KINDS.items, "toy", kind)
    return kind


def _toy_run(root: Path, kind: TaskKind, images: str, options: dict, scores: dict[str, float]) -> RunDir:
    """A finished run of a toy task, its record built as the evaluator builds it (``kind.record``, ``kind.label``)."""
    task = TaskConfig(name="toy-task", version=1, kind="toy", source="none", split="test", options=options)
    base = {"task": task.name, "model": "gpt2-frozen", "model_fingerprint": "mf", "seed": 0, "images": images,
            "limit": 0, "run_dir": "", "partial": False, **kind.record(task, None, 1)}  # fmt: skip
    base["task_label"] = kind.label(task.name, base)
    record = RunRecord(**base, metric="VQA accuracy", score=100 * sum(scores.values()) / len(scores), n=len(scores),
                       ci95=[0.0, 100.0])  # fmt: skip
    run = RunDir(root / "runs" / f"{images}-{options.get('level')}-{options.get('colour')}")
    run.start({"task": task.name, "task_version": 1, "task_fingerprint": f"tf-{sorted(options.items())}",
               "task_config": {"name": task.name, "kind": "toy", "options": options},
               "model": {"lm": "gpt2", "recipe": {"name": "frozen"}}})  # fmt: skip
    run.append({"id": k, "score": v} for k, v in scores.items())
    run.write_metrics(record.to_json())
    return run


def test_a_kinds_own_setting_is_carried_and_labelled_with_no_other_change(toy, tmp_path):
    ids = [f"q{i}" for i in range(10)]
    runs = [_toy_run(tmp_path, toy, images, {"level": level}, {q: float(i < right) for i, q in enumerate(ids)})
            for images, level, right in (("real", 3, 4), ("real", 5, 9), ("black", 5, 1))]  # fmt: skip
    runs.append(_toy_run(tmp_path, toy, "real", {"level": 3, "colour": "blue"}, {q: 0.5 for q in ids}))
    record = json.loads(runs[0].metrics_path.read_text())
    assert record["kind"] == "toy" and record["cell_settings"] == {"level": 3, "colour": "red"}
    assert record["task_label"] == "toy-task level 3"

    db = ResultsDB(tmp_path / "results.sqlite")
    for run in runs:
        db.index(run)
    stored = db._db.execute("SELECT kind, cell_settings FROM runs ORDER BY run_key").fetchall()
    assert ("toy", json.dumps({"colour": "red", "level": 5}, sort_keys=True)) in stored
    frame = db.frame()
    db.close()
    assert sorted(frame["task"]) == ["toy-task level 3", "toy-task level 3 in blue", "toy-task level 5",
                                     "toy-task level 5"]  # fmt: skip

    table = comparison(frame)
    assert table.loc["gpt2-frozen", "toy-task level 3 1-shot"] == "40.00 (n=1)"
    assert table.loc["gpt2-frozen", "toy-task level 5 1-shot"] == "90.00 (n=1)"
    assert table.loc["gpt2-frozen", "toy-task level 3 in blue 1-shot"] == "50.00 (n=1)"
    assert table.loc["gpt2-frozen (images blacked out)", "toy-task level 5 1-shot"] == "10.00 (n=1)"
    board = leaderboard(frame)
    assert set(board["task"]) == {"toy-task level 3", "toy-task level 5", "toy-task level 3 in blue"}

    # A findings file selects and compares cells by the setting's own name.
    findings = tmp_path / "toy.yaml"
    findings.write_text("findings:\n"
                        "  - {name: higher levels, claim: b > a, where: {kind: toy, images: real, colour: red},\n"
                        "     a: {level: 3}, b: {level: 5}}\n"
                        "  - {name: images, claim: b > a, where: {kind: toy, level: [5]}, a: {images: black},\n"
                        "     b: {images: real}}\n")  # fmt: skip
    out, _ = measure(frame, load_findings(findings))
    rows = dict(zip(out["finding"], zip(out["cells"], out["effect"])))
    assert rows["higher levels"] == ("gpt2-frozen toy-task 1-shot, real images: at level 5 vs at level 3",
                                     pytest.approx(50.0))  # fmt: skip
    assert rows["images"] == ("gpt2-frozen toy-task level 5 1-shot: real vs blacked out", pytest.approx(80.0))


def test_a_findings_setting_of_the_wrong_type_is_one_line(toy, tmp_path):
    from harness.errors import HarnessError

    path = tmp_path / "bad.yaml"
    path.write_text("findings: [{name: x, claim: b > a, a: {level: three}, b: {level: 5}}]")
    with pytest.raises(HarnessError, match=r"bad.yaml: findings\[0\] \(x\): a: field 'level' must be one int"):
        load_findings(path)


def test_old_naming_records_read_in_todays_shape(tmp_path):
    """Records written before ``kind`` and ``cell_settings`` are upgraded as they are read: the four naming fields,
    or, oldest, the options in config.json; a VQA record gets its task's kind from the task registry."""
    old = {"task": "emoji-open", "ways": 5, "repeats": 1, "induction": True, "answer": "rank",
           "metric": "naming accuracy"}  # fmt: skip
    assert upgrade(old) == {"task": "emoji-open", "metric": "naming accuracy", "kind": "naming",
                            "cell_settings": {"ways": 5, "repeats": 1, "induction": True, "answer": "rank"}}  # fmt: skip
    config = {"task_config": {"kind": "naming", "source": "emoji", "options": {"ways": 2}}}
    oldest = upgrade({"task": "emoji-open", "metric": "naming accuracy"}, lambda: config)
    assert oldest["cell_settings"] == {"ways": 2, "repeats": 1, "induction": False, "answer": "generate"}
    released = {"task_config": {"kind": "naming", "source": "frozen-episodes", "options": {"ways": 2}}}
    assert upgrade({"task": "x", "metric": "naming accuracy"}, lambda: released)["cell_settings"] == {
        "answer": "generate"
    }
    assert upgrade({"task": "easyvqa-tiny", "metric": "VQA accuracy"}) == {
        "task": "easyvqa-tiny",
        "metric": "VQA accuracy",
        "kind": "vqa",
    }
    today = {"task": "t", "kind": "naming", "cell_settings": {"ways": 2}}
    assert upgrade(today) is today


def test_a_database_from_before_the_settings_columns_gets_them_and_reads_its_rows(tmp_path):
    """A results database made before ``kind`` and ``cell_settings`` were columns: they are added, and its rows
    (their metrics_json in the old shape) are labelled from their run's record, upgraded."""
    from harness.results.database import SCHEMA

    folder = tmp_path / "runs" / "r1"
    folder.mkdir(parents=True)
    config = {"task": "emoji-open", "task_fingerprint": "tf", "model": {"lm": "gpt2", "recipe": {"name": "frozen"}},
              "task_config": {"kind": "naming", "source": "emoji", "options": {"ways": 5, "induction": True}}}  # fmt: skip
    metrics = {"task": "emoji-open", "model": "gpt2-frozen", "model_fingerprint": "mf", "shots": 1, "seed": 0,
               "images": "real", "metric": "naming accuracy", "score": 50.0, "ci95": [0, 100], "n": 2, "limit": 0,
               "run_dir": str(folder), "partial": False}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    old_schema = SCHEMA.replace(",\n    kind TEXT,\n    cell_settings TEXT", "")
    assert "cell_settings" not in old_schema
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute(old_schema)
    row = {"run_key": "r1", "run_dir": str(folder), "task": "emoji-open", "task_fingerprint": "tf",
           "model": "gpt2-frozen", "lm": "gpt2", "recipe": "frozen", "model_fingerprint": "mf", "shots": 1,
           "seed": 0, "images": "real", "metric": "naming accuracy", "score": 50.0, "n": 2, "partial": 0,
           "created": "2026-01-01T00:00:00+00:00", "metrics_json": json.dumps(metrics)}  # fmt: skip
    db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)
    db.commit()
    db.close()
    results = ResultsDB(tmp_path / "results.sqlite")
    frame = results.frame()
    results.close()
    assert list(frame["task"]) == ["emoji-open 5-way +induction"]
    assert frame.loc[0, "kind"] == "naming" and frame.loc[0, "cell_settings"]["ways"] == 5
