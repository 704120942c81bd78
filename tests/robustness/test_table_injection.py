"""Names written into tables cannot act: in every CSV the harness writes a text cell that a spreadsheet would run
as a formula (=, +, -, @, tab, carriage return first) starts with an apostrophe, numbers (negative ones too) stay
numbers; in every Markdown table a '|' is escaped and a line break is a space, so no name adds a cell or a row.
A model name with a control character is refused when the model is named."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main
from harness.results import escape
from tests.robustness.conftest import cli_error

FORMULA = '=HYPERLINK("http://x","y")'
PIPE = "a|b fake"
MODELS = f"""
class Formula:
    name = {FORMULA!r}

    def generate(self, prompts, max_new_tokens, stop):
        return ["yes"] * len(prompts)


class Pipe:
    name = {PIPE!r}

    def generate(self, prompts, max_new_tokens, stop):
        return ["no"] * len(prompts)


class At:
    name = "@SUM(1+1)"

    def generate(self, prompts, max_new_tokens, stop):
        return ["no"] * len(prompts)


class Newline:
    name = "x\\n| fake | row |"

    def generate(self, prompts, max_new_tokens, stop):
        return ["no"] * len(prompts)


class NamesItself:
    def __init__(self):
        self.name = "ok\\rnot ok"

    def generate(self, prompts, max_new_tokens, stop):
        return ["no"] * len(prompts)
"""
FINDINGS = """findings:
  - name: "-2+3+cmd|' /C calc'!A0 and | a pipe"
    claim: b > a
    where: {kind: vqa}
    a: {images: black}
    b: {images: real}
"""


def _safe_csv(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            if cell.startswith(escape.FORMULA_START):
                float(cell)  # only a number may start so
    return rows


def _one_row_per_line(text: str) -> list[str]:
    """The Markdown table lines of ``text``, each checked to have as many cells as the header."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines, text
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in lines]
    assert len(set(cells)) == 1, text
    return lines


@pytest.fixture
def runs(tmp_path: Path, fresh_home: Path, capsys) -> Path:
    (tmp_path / "models.py").write_text(MODELS)
    base = ["run", "--task", "easyvqa-tiny", "--limit", "3"]
    for cls, images in [("Formula", "real"), ("Formula", "black"), ("Pipe", "real"), ("At", "real")]:
        assert main([*base, "--images", images, "--model", f"{tmp_path / 'models.py'}:{cls}"]) == 0
        out = capsys.readouterr().out
        assert len(_one_row_per_line(out)) == 3, out  # header, rule, one row
    return tmp_path


def test_every_csv_is_safe_in_a_spreadsheet(runs, capsys):
    board = runs / "board.csv"
    assert main(["leaderboard", "--csv", str(board)]) == 0
    rows = _safe_csv(board.read_text())
    models = {row[rows[0].index("model")] for row in rows[1:]}
    assert models == {"'" + FORMULA, PIPE, "'@SUM(1+1)"}
    assert all(float(row[rows[0].index("mean")]) >= 0 for row in rows[1:])  # numbers stay numbers
    capsys.readouterr()
    assert main(["table", "--format", "csv", "--no-published"]) == 0
    out = capsys.readouterr().out
    assert "'" + FORMULA in {row[0] for row in _safe_csv(out.split("\nmean ± std")[0])}
    assert main(["compare", "--baseline", PIPE, "--format", "csv"]) == 0
    _safe_csv(capsys.readouterr().out.split("\n\n")[0])
    findings = runs / "findings.yaml"
    findings.write_text(FINDINGS)
    assert main(["findings", "--findings", str(findings), "--format", "csv"]) == 0
    rows = _safe_csv(capsys.readouterr().out)
    assert rows[1][0].startswith("'-2+3+cmd"), rows


def test_every_markdown_table_keeps_its_rows(runs, capsys):
    assert main(["table", "--no-published"]) == 0
    lines = _one_row_per_line(capsys.readouterr().out)
    assert any("a\\|b fake" in line for line in lines)
    assert main(["compare", "--baseline", PIPE]) == 0
    _one_row_per_line(capsys.readouterr().out)
    findings = runs / "findings.yaml"
    findings.write_text(FINDINGS)
    assert main(["findings", "--findings", str(findings)]) == 0
    lines = _one_row_per_line(capsys.readouterr().out.split("\n\n")[0])
    assert any("cmd\\|" in line and "\\| a pipe" in line for line in lines)
    assert main(["report", "--out", str(runs / "report"), "--samples", "1"]) == 0
    summary = (runs / "report" / "summary.md").read_text()
    for table in summary.split("\n## "):
        if "|" in table:
            _one_row_per_line(table)
    assert "a\\|b fake" in summary


@pytest.mark.parametrize("cls", ["Newline", "NamesItself"])
def test_a_model_name_with_a_control_character_is_refused(cls, tmp_path, fresh_home, capsys):
    (tmp_path / "models.py").write_text(MODELS)
    args = ["run", "--task", "easyvqa-tiny", "--limit", "3", "--model", f"{tmp_path / 'models.py'}:{cls}"]
    line = cli_error(capsys, args)
    assert "holds control characters" in line, line


def test_the_helpers_leave_numbers_alone():
    assert [escape.csv_cell(v) for v in ["-3.5", "+2", "1e-3", -3.5, None, "-inf"]] == ["-3.5", "+2", "1e-3", -3.5,
                                                                                         None, "-inf"]  # fmt: skip
    assert [escape.csv_cell(v) for v in ["=1+1", "-x", "+cmd", "@a", "\tb", "\rc", "ok"]] == [
        "'=1+1", "'-x", "'+cmd", "'@a", "'\tb", "'\rc", "ok"]  # fmt: skip
    assert escape.markdown_cell("a|b\r\nc\nd") == "a\\|b c d"
    frame = pd.DataFrame({"name": ["=x", "y|z"], "delta": [-3.5, 2.0]}, index=pd.Index(["@i", "j"], name="=n"))
    text = escape.csv_text(frame, index=True)
    assert text.splitlines() == ["'=n,name,delta", "'@i,'=x,-3.5", "j,y|z,2.0"]
    assert escape.markdown_frame(frame)["name"].tolist() == ["=x", "y\\|z"]
    assert frame["name"].tolist() == ["=x", "y|z"] and frame.index.name == "=n"  # the frame itself unchanged
