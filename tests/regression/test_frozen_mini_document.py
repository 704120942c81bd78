"""results/frozen-mini.md regenerates from its shipped run records: the leaderboard CSV byte for byte, and every
table the document marks with the command that printed it.

results/frozen-mini-runs.tar.xz holds every run folder behind the page (the dev tuning runs included). A table in
the page between ``<!-- regenerate: COMMAND -->`` and ``<!-- /regenerate -->`` must be exactly what COMMAND prints
on those records today (``harness ...`` or ``python results/analysis/...``), so no number of a table can drift from
the records, and no verdict in it may claim more than its Holm-adjusted p allows.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pytest

from harness.cli.main import main
from tests.regression.shipped import extract_runs

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "results" / "frozen-mini.md"
RECORDS = REPO / "results" / "frozen-mini-runs.tar.xz"
CSV = REPO / "results" / "frozen-mini.csv"
ALPHA = 0.05

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return extract_runs(RECORDS, tmp_path_factory.mktemp("frozen-mini"))


def _harness(home: Path, monkeypatch, capsys, args: list[str]) -> str:
    monkeypatch.setenv("HARNESS_HOME", str(home))
    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def _regenerate():
    """results/analysis/regenerate.py, the script that writes the page's marked tables."""
    spec = importlib.util.spec_from_file_location("regenerate", REPO / "results" / "analysis" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_marked_table_of_the_page_regenerates_from_the_records(home, monkeypatch, capsys):
    _harness(home, monkeypatch, capsys, ["table", "--rebuild-index"])
    regenerate = _regenerate()
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the scripts import this checkout's harness
    blocks = list(regenerate.BLOCK.finditer(PAGE.read_text()))
    assert len(blocks) >= 4  # the findings, the tuning, the training-seed spread and the naming tables at least
    for block in blocks:
        got = regenerate.output(block["command"], REPO).strip()
        assert got == block["body"].strip(), f"{PAGE.name}: the table of `{block['command']}` is stale"


def test_the_leaderboard_regenerates_the_shipped_csv_and_no_verdict_outruns_its_holm_p(home, monkeypatch, capsys,
                                                                                      tmp_path):  # fmt: skip
    _harness(home, monkeypatch, capsys, ["table", "--rebuild-index"])
    exported = tmp_path / "frozen-mini.csv"
    _harness(home, monkeypatch, capsys, ["leaderboard", "--csv", str(exported)])
    assert exported.read_bytes() == CSV.read_bytes(), f"{CSV.name} is stale: regenerate it as {PAGE.name} says"
    rows = list(csv.DictReader(io.StringIO(_harness(home, monkeypatch, capsys, ["findings", "--format", "csv"]))))
    decided = [r for r in rows if r["verdict"].startswith(("holds", "does not hold")) and r["p_holm"]]
    assert decided and all(float(r["p_holm"]) < ALPHA for r in decided)
