"""The shipped Frozen-in-miniature records regenerate results/frozen-mini.csv byte for byte, and their
findings obey the correction.

results/frozen-mini-runs.tar.xz holds the run folders behind results/frozen-mini.md. Rebuilding the index
from them and exporting the leaderboard must give the committed CSV exactly: a change in how cells, means
or CIs are computed shows up here as a diff to review (then regenerate the CSV as results/frozen-mini.md
says). And no verdict of `harness findings` on them may claim more than its Holm-adjusted p allows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from harness.cli.main import main
from tests.regression.shipped import extract_runs

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "results" / "frozen-mini-v1-runs.tar.xz"
CSV = REPO / "results" / "frozen-mini-v1.csv"
ALPHA = 0.05


@pytest.fixture(scope="module")
def mini_home(tmp_path_factory) -> Path:
    return extract_runs(RECORDS, tmp_path_factory.mktemp("frozen-mini"))


def _in(home: Path, monkeypatch, capsys, *command: str) -> str:
    monkeypatch.setenv("HARNESS_HOME", str(home))
    code = main(list(command))
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_leaderboard_regenerates_the_shipped_csv_byte_for_byte(mini_home, tmp_path, monkeypatch, capsys):
    _in(mini_home, monkeypatch, capsys, "table", "--rebuild-index")
    exported = tmp_path / "frozen-mini.csv"
    _in(mini_home, monkeypatch, capsys, "leaderboard", "--csv", str(exported))
    got, want = exported.read_bytes(), CSV.read_bytes()
    if got != want:
        diff = [
            f"line {i + 1}:\n  shipped   {w}\n  rebuilt   {g}"
            for i, (g, w) in enumerate(zip(got.decode().splitlines(), want.decode().splitlines()))
            if g != w
        ]
        pytest.fail(
            f"{CSV.name} is stale ({len(got.splitlines())} rows rebuilt, {len(want.splitlines())} shipped; "
            f"{len(diff)} lines differ):\n" + "\n".join(diff[:5])
        )


def test_no_verdict_on_the_shipped_records_outruns_its_holm_p(mini_home, monkeypatch, capsys):
    _in(mini_home, monkeypatch, capsys, "table", "--rebuild-index")
    rows = list(csv.DictReader(io.StringIO(_in(mini_home, monkeypatch, capsys, "findings", "--format", "csv"))))
    assert len(rows) == 67  # 65 measured, and the two naming controls they predate (not measured)
    decided = [row for row in rows if row["verdict"].startswith(("holds", "does not hold"))]
    compared = [row for row in decided if row["p_holm"]]  # "near zero" rows have no p
    assert compared and len(decided) - len(compared) == 3  # the three scratch rows
    loose = [f"{row['cells']}: {row['verdict']} at Holm p {row['p_holm']}" for row in compared
             if float(row["p_holm"]) >= ALPHA]  # fmt: skip
    assert not loose, "\n".join(loose)
    # The rule is exercised both ways: rows whose CI clears 0 but whose adjusted p does not are not shown.
    held_back = [row for row in rows if row["verdict"].startswith("not shown") and row["p_holm"]
                 and (float(row["ci95_low"]) > 0 or float(row["ci95_high"]) < 0)]  # fmt: skip
    assert held_back and all(float(row["p_holm"]) >= ALPHA for row in held_back)
