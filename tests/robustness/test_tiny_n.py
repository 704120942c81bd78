"""Statistics on tiny n. A bootstrap over one item gives the score itself as its interval ("100 [100.0, 100.0]"), and
a corpus metric over one image is 0 by construction (CIDEr's IDF). Below ``stats.MIN_ITEMS_FOR_CI`` items no table
prints an interval (the run table, compare, findings, the leaderboard CSV's CI cells are empty) and says why; below
``stats.MIN_IMAGES_FOR_CORPUS`` images the run table and `table` say that the corpus metric is not meaningful."""

from __future__ import annotations

import csv
import re

import pytest

from harness.cli.main import main
from harness.metrics import stats
from harness.results import findings_table
from harness.results.findings import findings_path, load_findings
from tests.unit.test_findings import _frame, _run

BRACKETS = re.compile(r"\[[-+]?\d+\.\d, [-+]?\d+\.\d\]")


@pytest.fixture
def echo(tmp_path):
    """A model of one's own that gives every prompt the same answer: no training, scores that depend on the data."""
    path = tmp_path / "echo.py"
    path.write_text(
        "class Echo:\n    def generate(self, prompts, max_new_tokens, stop):\n"
        "        return ['a red circle.' for _ in prompts]\n"
    )
    return f"{path}:Echo"


def _out(capsys, args: list[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def _leaderboard(capsys, tmp_path) -> list[dict]:
    path = tmp_path / "board.csv"
    _out(capsys, ["leaderboard", "--csv", str(path)])
    return list(csv.DictReader(path.open()))


def test_the_minimums_are_what_the_docs_say():
    assert stats.MIN_ITEMS_FOR_CI == 10 and stats.MIN_IMAGES_FOR_CORPUS == 10
    assert not stats.ci_shown(1) and not stats.ci_shown(9) and stats.ci_shown(10)
    assert stats.corpus_note("CIDEr", 10) == "" and "over 9 image(s) is not meaningful" in stats.corpus_note("CIDEr", 9)


@pytest.mark.parametrize("limit", [1, 2, 9])
def test_run_and_compare_and_leaderboard_on_too_few_items_print_no_interval(fresh_home, echo, capsys, tmp_path, limit):
    run = ["run", "--task", "easyvqa-tiny", "--model", echo, "--limit", str(limit), "--quiet"]
    out = _out(capsys, [*run, "--images", "real,black"])
    assert out.count(stats.NO_CI) >= 2 and stats.NO_CI_WHY in out and not BRACKETS.search(out), out
    model = next(row["model"] for row in _leaderboard(capsys, tmp_path))

    out = _out(capsys, ["compare", "--baseline", model, "--task", "easyvqa-tiny"])
    assert f"({stats.NO_CI})" in out and stats.NO_CI_WHY in out and not BRACKETS.search(out), out
    rows = list(csv.DictReader(_out(capsys, ["compare", "--baseline", model, "--format", "csv"]).splitlines()[:2]))
    assert rows[0]["ci95_low"] == rows[0]["ci95_high"] == "" and rows[0]["n_items"] == str(limit)

    board = _leaderboard(capsys, tmp_path)
    assert len(board) == 2 and all(r["ci95_low"] == r["ci95_high"] == "" for r in board)
    assert all(r["n_samples"] == str(limit) and r["mean"] != "" for r in board)  # the mean stays


def test_ten_items_still_get_their_interval(fresh_home, echo, capsys, tmp_path):
    out = _out(capsys, ["run", "--task", "easyvqa-tiny", "--model", echo, "--limit", "10", "--quiet",
                        "--images", "real,black"])  # fmt: skip
    assert stats.NO_CI not in out and len(BRACKETS.findall(out)) == 2, out
    board = _leaderboard(capsys, tmp_path)
    assert all(float(r["ci95_low"]) <= float(r["mean"]) <= float(r["ci95_high"]) for r in board)
    out = _out(capsys, ["compare", "--baseline", board[0]["model"]])
    assert stats.NO_CI not in out and BRACKETS.search(out), out


@pytest.mark.slow
@pytest.mark.parametrize("limit", [1, 3])
def test_cider_on_too_few_images_says_it_is_not_meaningful(fresh_home, echo, capsys, limit):
    out = _out(capsys, ["run", "--task", "easyvqa-caption-tiny", "--model", echo, "--limit", str(limit), "--quiet"])
    assert f"over {limit} image(s) is not meaningful" in out and "IDF" in out and stats.NO_CI in out, out
    out = _out(capsys, ["table", "--task", "easyvqa-caption-tiny", "--no-published"])
    assert f"over {limit} image(s) is not meaningful" in out, out


@pytest.mark.slow
def test_cider_on_ten_images_has_no_note(fresh_home, echo, capsys):
    out = _out(capsys, ["run", "--task", "easyvqa-caption-tiny", "--model", echo, "--limit", "10", "--quiet"])
    assert "not meaningful" not in out and stats.NO_CI not in out, out
    assert "not meaningful" not in _out(capsys, ["table", "--task", "easyvqa-caption-tiny", "--no-published"])


@pytest.mark.parametrize("items", [1, 4, 9])
def test_findings_on_too_few_items_show_no_interval_and_no_verdict(tmp_path, items):
    ids = [f"q{i}" for i in range(items)]
    for seed in (0, 1):
        _run(tmp_path, "gpt2-frozen", "real", 1, seed, {q: 1.0 for q in ids})
        _run(tmp_path, "gpt2-frozen", "black", 1, seed, {q: 0.0 for q in ids})
    _run(tmp_path, "gpt2-scratch", "real", 0, 0, {q: 0.0 for q in ids})
    table, notes = findings_table.measure(_frame(tmp_path), load_findings(findings_path("frozen")))
    measured = table[table["n"] > 0]
    assert len(measured) == 2 and measured["ci95_low"].isna().all() and measured["ci95_high"].isna().all()
    assert (measured["verdict"] == "not shown").all()  # every item right against every item wrong: not a finding
    assert set(measured["effect"]) == {100.0, 0.0}
    text = findings_table.markdown(table, notes)
    assert f"not shown ({stats.NO_CI})" in text and stats.NO_CI_WHY in text and not BRACKETS.search(text)
    rows = [r for r in csv.DictReader(findings_table.csv(table).splitlines()) if r["n"] != "0"]
    assert len(rows) == 2 and all(r["ci95_low"] == r["ci95_high"] == "" for r in rows)
