"""baselines/published.csv holds every number of PUBLISHED.md; its loader checks it; settings differences."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from harness import paths
from harness.errors import HarnessError
from harness.published import COLUMNS, PUBLISHED_CSV, load_published, setting_differences

# A score: a decimal not glued to a name ("OPT-2.7B", "3.1B"); a full stop may end it.
DECIMAL = re.compile(r"(?<![\w.\-/])\d+\.\d+(?!\.?\w)")
FROZEN = "Frozen (Tsimpoukelli et al. 2021)"
TASKS = {"VQAv2": "vqav2", "OK-VQA": "okvqa"}


def published_md() -> str:
    candidates = [os.environ.get("HARNESS_PUBLISHED_MD", ""), paths.REPO_ROOT / "shared" / "PUBLISHED.md",
                  paths.REPO_ROOT.parent / "shared" / "PUBLISHED.md"]  # fmt: skip
    for path in map(Path, filter(None, candidates)):
        if path.is_file():
            return path.read_text()
    pytest.skip("PUBLISHED.md not found (set HARNESS_PUBLISHED_MD)")


def number_lines(text: str) -> list[str]:
    """The lines that hold published numbers: table rows and the miniImageNet paragraph."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Open-ended miniImageNet"))
    paragraph = lines[start : lines.index("", start)]
    return [line for line in lines if line.startswith("|")] + paragraph


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_published()


def test_every_number_in_published_md_is_in_the_csv(table):
    numbers = [n for line in number_lines(published_md()) for n in DECIMAL.findall(line)]
    assert len(numbers) >= 45, numbers  # the regex still finds the tables
    scores = set(table.score)
    settings = " ".join(table.setting)
    missing = [n for n in numbers if float(n) not in scores and n not in settings]
    assert not missing, f"numbers of PUBLISHED.md not in {PUBLISHED_CSV.name}: {missing}"


def test_frozen_table_cells_are_rows_with_their_shots_and_secondary_mark(table):
    rows = [line.strip("|").split("|") for line in number_lines(published_md()) if line.startswith("| ")]
    header = next(r for r in rows if "0-shot" in "|".join(r))
    shot_columns = {i: int(cell.strip().removesuffix("-shot")) for i, cell in enumerate(header) if "-shot" in cell}
    checked = 0
    for cells in rows:
        dataset = cells[0].split(" (")[0].strip()
        if dataset not in TASKS:
            continue
        for i, shots in shot_columns.items():
            if not cells[i].strip():
                continue
            match = table[(table.source == FROZEN) & (table.task == TASKS[dataset]) & (table.shots == shots)
                          & (table.score == float(cells[i]))]  # fmt: skip
            assert len(match) == 1, cells
            assert bool(match.secondary.iloc[0]) == (cells[-1].strip() == "secondary"), cells
            checked += 1
    assert checked == 16


def test_chance_levels_are_marked_rows():
    chance = re.search(r"Chance: (\d+) / (\d+)", published_md())
    table = load_published()
    rows = table[table.model.str.contains("chance")]
    assert sorted(zip(rows.ways, rows.score)) == [(2, float(chance[1])), (5, float(chance[2]))]
    assert rows.secondary.all() and (rows.recipe == "").all() and rows.setting.str.contains("CHANCE").all()


def test_known_secondary_flags(table):
    def flag(**where: object) -> bool:
        match = table.loc[(table[list(where)] == pd.Series(where)).all(axis=1)]
        assert len(match) == 1, where
        return bool(match.secondary.iloc[0])

    assert flag(model="Frozen", task="vqav2", shots=4) is False
    assert flag(model="Frozen", task="okvqa", shots=1) is False
    assert flag(model="Frozen finetuned", task="vqav2") is True
    assert flag(model="Frozen train-blind", task="vqav2", shots=4) is True
    assert flag(model="Frozen, 400M LM", task="okvqa", shots=4) is True
    assert flag(model="Flamingo-3B", task="coco", shots=4) is False
    assert flag(model="ClipCap, MLP mapper, fine-tuned GPT-2", metric="SPICE") is False
    assert table[table.task == "miniimagenet-open"].secondary.all()  # the whole block is secondary


def test_types_and_shape(table):
    assert tuple(table.columns) == COLUMNS
    assert {c: str(table[c].dtype) for c in ("shots", "ways", "inner_shots", "induction", "score", "secondary")} == {
        "shots": "Int64", "ways": "Int64", "inner_shots": "Int64", "induction": "boolean", "score": "float64",
        "secondary": "bool"}  # fmt: skip
    mini = table[(table.task == "miniimagenet-open") & (table.model == "Frozen")]
    assert len(mini) == 8 and mini.shots.isna().all() and not mini.induction.isna().any()
    clipcap = table[table.source.str.startswith("ClipCap")]
    assert sorted(clipcap.metric.unique()) == ["BLEU-4", "CIDEr", "METEOR", "SPICE"] and len(clipcap) == 8
    assert set(table.recipe) <= {"", "frozen", "finetuned", "scratch", "train-blind"}


def rewrite(tmp_path: Path, change) -> Path:
    """A copy of the real CSV with ``change`` applied to its list of row dicts."""
    with open(PUBLISHED_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = change(rows) or list(COLUMNS)
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "pub.csv"
    path.write_text(out.getvalue())
    return path


def set_cell(column: str, value: str, row: int = 0):
    def change(rows):
        rows[row][column] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda rows: [c for c in COLUMNS if c != "lm"], "missing column 'lm'"),
        (lambda rows: [*COLUMNS, "note"], "unknown column 'note'"),
        (lambda rows: ["model", "source", *COLUMNS[2:]], "columns out of order"),
        (lambda rows: rows.clear(), "no rows"),
        (set_cell("shots", "two", row=2), "pub.csv:4: column 'shots' must be a whole number or empty, got 'two'"),
        (set_cell("ways", "-2"), "pub.csv:2: column 'ways' must be a whole number"),
        (set_cell("induction", "yes"), "column 'induction' must be true, false or empty"),
        (set_cell("secondary", ""), "pub.csv:2: column 'secondary' must be true or false, got ''"),
        (set_cell("score", "n/a"), "column 'score' must be a number, got 'n/a'"),
        (set_cell("score", "nan"), "column 'score' must be a finite number"),
        (set_cell("score", ""), "column 'score' must not be empty"),
        (set_cell("source", ""), "column 'source' must not be empty"),
        (set_cell("metric", "accuracy"), "column 'metric' must be one of"),
        (set_cell("task", "vqa2"), "column 'task' must be a task in tasks/, got 'vqa2'"),
        (set_cell("recipe", "frozn"), "column 'recipe' must be empty or a recipe"),
        (lambda rows: rows.append(dict(rows[0])), "repeats an earlier row's"),
    ],
)
def test_bad_csv_is_one_line_naming_file_and_cell(tmp_path, change, message):
    with pytest.raises(HarnessError) as err:
        load_published(rewrite(tmp_path, change))
    assert message in str(err.value) and "pub.csv" in str(err.value) and "\n" not in str(err.value)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(HarnessError, match="no such file"):
        load_published(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text(",".join(COLUMNS) + "\n" + ",".join(["x"] * (len(COLUMNS) + 1)) + "\n")
    with pytest.raises(HarnessError, match="bad.csv:2: 16 fields, expected 15") as err:
        load_published(tmp_path / "bad.csv")
    assert "\n" not in str(err.value)


def one(table: pd.DataFrame, **where: object) -> pd.Series:
    match = table.loc[(table[list(where)] == pd.Series(where)).all(axis=1)]
    assert len(match) == 1, where
    return match.iloc[0]


def test_setting_differences(table):
    frozen_0 = one(table, model="Frozen", task="vqav2", shots=0)
    assert setting_differences(frozen_0, task="easyvqa", shots=0, lm="smollm2-135m") == [
        "vqav2 val vs easyvqa", "7B LM vs smollm2-135m"]  # fmt: skip
    assert setting_differences(frozen_0, task="vqav2", shots=4, lm="gpt2") == ["0-shot vs 4-shot", "7B LM vs gpt2"]
    assert setting_differences(frozen_0, task="vqav2-hub", shots=0, lm="gpt2") == ["7B LM vs gpt2"]
    assert setting_differences(frozen_0, task="vqav2", shots=0, lm="7B (C4)") == []
    flamingo = one(table, model="Flamingo-3B", task="vqav2", shots=4)
    assert setting_differences(flamingo, task="vqav2", shots=4, lm="opt-1.3b") == [
        "test-dev vs val", "1.4B LM vs opt-1.3b"]  # fmt: skip
    blip2 = one(table, model="BLIP-2 ViT-L + OPT-2.7B", task="okvqa")
    assert setting_differences(blip2, task="okvqa", shots=0, lm="opt-1.3b") == ["OPT-2.7B LM vs opt-1.3b"]


def test_setting_differences_without_shots_split_or_lm(table):
    clipcap = one(table, model="ClipCap, transformer mapper, frozen GPT-2", metric="CIDEr")
    assert setting_differences(clipcap, task="coco", shots=0, lm="gpt2") == ["GPT-2 small LM vs gpt2"]  # same size
    assert setting_differences(clipcap, task="coco-tiny", shots=0, lm="gpt2")[0] == "coco Karpathy test vs coco-tiny"
    mini = one(table, model="Frozen", task="miniimagenet-open", ways=5, inner_shots=3)
    assert setting_differences(mini, task="emoji-open", shots=0, lm="gpt2") == [
        "miniimagenet-open vs emoji-open", "7B LM vs gpt2"]  # fmt: skip
    chance = one(table, model="chance (not a model)", ways=2)
    assert setting_differences(chance, task="miniimagenet-open", shots=0, lm="gpt2") == []
    as_dict = {"task": "okvqa", "split": "val", "shots": None, "lm": "7B (C4)"}
    assert setting_differences(as_dict, task="okvqa", shots=1, lm="gpt2") == ["7B LM vs gpt2"]
