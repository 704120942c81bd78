"""published.csv holds the papers' numbers, each with its setting; its loader checks it; settings differences."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.results.published import COLUMNS, PUBLISHED_CSV, load_published, setting_differences

FROZEN = "Frozen (Tsimpoukelli et al. 2021)"

# The papers' numbers, as their tables print them: (source, model, task, shots, ways, inner shots, task
# induction, metric, score, secondary). "secondary": read from another paper's table or summary of the
# original (Frozen's ablations and its miniImageNet block), a mark the CSV must keep.
PAPERS = [
    # Frozen (NeurIPS 2021), Table 1 (VQAv2 val, OK-VQA val; 0 / 1 / 4 shots) and its ablations
    (FROZEN, "Frozen", "vqav2", 0, None, None, None, "vqa_accuracy", 29.5, False),
    (FROZEN, "Frozen", "vqav2", 1, None, None, None, "vqa_accuracy", 35.7, False),
    (FROZEN, "Frozen", "vqav2", 4, None, None, None, "vqa_accuracy", 38.2, False),
    (FROZEN, "Frozen finetuned", "vqav2", 0, None, None, None, "vqa_accuracy", 24.0, True),
    (FROZEN, "Frozen scratch", "vqav2", 0, None, None, None, "vqa_accuracy", 0.0, True),
    (FROZEN, "Frozen train-blind", "vqav2", 0, None, None, None, "vqa_accuracy", 26.2, True),
    (FROZEN, "Frozen train-blind", "vqav2", 4, None, None, None, "vqa_accuracy", 33.3, True),
    (FROZEN, "Frozen VQA", "vqav2", 0, None, None, None, "vqa_accuracy", 48.4, True),
    (FROZEN, "Frozen", "okvqa", 0, None, None, None, "vqa_accuracy", 5.9, False),
    (FROZEN, "Frozen", "okvqa", 1, None, None, None, "vqa_accuracy", 9.7, False),
    (FROZEN, "Frozen", "okvqa", 4, None, None, None, "vqa_accuracy", 12.6, False),
    (FROZEN, "Frozen, 400M LM", "okvqa", 0, None, None, None, "vqa_accuracy", 4.0, True),
    (FROZEN, "Frozen, 400M LM", "okvqa", 4, None, None, None, "vqa_accuracy", 6.6, True),
    (FROZEN, "Frozen finetuned", "okvqa", 0, None, None, None, "vqa_accuracy", 4.2, True),
    (FROZEN, "Frozen train-blind", "okvqa", 0, None, None, None, "vqa_accuracy", 3.3, True),
    (FROZEN, "Frozen VQA", "okvqa", 0, None, None, None, "vqa_accuracy", 19.6, True),
    # Frozen, open-ended miniImageNet (2-way and 5-way; no induction, then induction with 1 / 3 / 5 inner shots)
    (FROZEN, "Frozen", "miniimagenet-open", None, 2, 1, False, "naming_accuracy", 29.0, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 2, 1, True, "naming_accuracy", 53.4, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 2, 3, True, "naming_accuracy", 57.9, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 2, 5, True, "naming_accuracy", 58.9, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 5, 1, False, "naming_accuracy", 18.0, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 5, 1, True, "naming_accuracy", 20.2, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 5, 3, True, "naming_accuracy", 22.3, True),
    (FROZEN, "Frozen", "miniimagenet-open", None, 5, 5, True, "naming_accuracy", 21.3, True),
    (FROZEN, "chance (not a model)", "miniimagenet-open", None, 2, None, None, "naming_accuracy", 50.0, True),
    (FROZEN, "chance (not a model)", "miniimagenet-open", None, 5, None, None, "naming_accuracy", 20.0, True),
    # BLIP-2 (Li et al. 2023), Table 2: zero-shot VQAv2 val / OK-VQA
    ("BLIP-2 (Li et al. 2023) Table 2", "BLIP-2 ViT-L + OPT-2.7B", "vqav2", 0, None, None, None, "vqa_accuracy", 50.1, False),
    ("BLIP-2 (Li et al. 2023) Table 2", "BLIP-2 ViT-L + OPT-2.7B", "okvqa", 0, None, None, None, "vqa_accuracy", 30.2, False),
    ("BLIP-2 (Li et al. 2023) Table 2", "BLIP-2 ViT-g + OPT-6.7B", "vqav2", 0, None, None, None, "vqa_accuracy", 54.3, False),
    ("BLIP-2 (Li et al. 2023) Table 2", "BLIP-2 ViT-g + OPT-6.7B", "okvqa", 0, None, None, None, "vqa_accuracy", 36.4, False),
    ("BLIP-2 (Li et al. 2023) Table 2", "BLIP-2 ViT-g + FlanT5-XXL", "vqav2", 0, None, None, None, "vqa_accuracy", 65.2, False),
    ("BLIP-2 (Li et al. 2023) Table 2", "BLIP-2 ViT-g + FlanT5-XXL", "okvqa", 0, None, None, None, "vqa_accuracy", 45.9, False),
    # Flamingo (Alayrac et al. 2022), Table 1: Flamingo-3B, 0 and 4 shots
    ("Flamingo (Alayrac et al. 2022) Table 1", "Flamingo-3B", "okvqa", 0, None, None, None, "vqa_accuracy", 41.2, False),
    ("Flamingo (Alayrac et al. 2022) Table 1", "Flamingo-3B", "vqav2", 0, None, None, None, "vqa_accuracy", 49.2, False),
    ("Flamingo (Alayrac et al. 2022) Table 1", "Flamingo-3B", "coco", 0, None, None, None, "CIDEr", 73.0, False),
    ("Flamingo (Alayrac et al. 2022) Table 1", "Flamingo-3B", "okvqa", 4, None, None, None, "vqa_accuracy", 43.3, False),
    ("Flamingo (Alayrac et al. 2022) Table 1", "Flamingo-3B", "vqav2", 4, None, None, None, "vqa_accuracy", 53.2, False),
    ("Flamingo (Alayrac et al. 2022) Table 1", "Flamingo-3B", "coco", 4, None, None, None, "CIDEr", 85.0, False),
    # OpenFlamingo's README: OpenFlamingo-3B, 4 shots
    ("OpenFlamingo README", "OpenFlamingo-3B (MPT-1B + CLIP ViT-L/14)", "coco", 4, None, None, None, "CIDEr", 77.3, False),
    ("OpenFlamingo README", "OpenFlamingo-3B (MPT-1B + CLIP ViT-L/14)", "vqav2", 4, None, None, None, "vqa_accuracy", 45.8, False),
    # ClipCap (Mokady et al. 2021): COCO Karpathy test, supervised
    ("ClipCap (Mokady et al. 2021)", "ClipCap, transformer mapper, frozen GPT-2", "coco", None, None, None, None, "BLEU-4", 33.53, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, transformer mapper, frozen GPT-2", "coco", None, None, None, None, "METEOR", 27.45, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, transformer mapper, frozen GPT-2", "coco", None, None, None, None, "CIDEr", 113.08, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, transformer mapper, frozen GPT-2", "coco", None, None, None, None, "SPICE", 21.05, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, MLP mapper, fine-tuned GPT-2", "coco", None, None, None, None, "BLEU-4", 32.15, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, MLP mapper, fine-tuned GPT-2", "coco", None, None, None, None, "METEOR", 27.1, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, MLP mapper, fine-tuned GPT-2", "coco", None, None, None, None, "CIDEr", 108.35, False),
    ("ClipCap (Mokady et al. 2021)", "ClipCap, MLP mapper, fine-tuned GPT-2", "coco", None, None, None, None, "SPICE", 20.12, False),
]  # fmt: skip


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_published()


def _key(source, model, task, shots, ways, inner, induction, metric) -> tuple:
    return (source, model, task, None if pd.isna(shots) else int(shots), None if pd.isna(ways) else int(ways),
            None if pd.isna(inner) else int(inner), None if pd.isna(induction) else bool(induction), metric)  # fmt: skip


def test_the_csv_holds_the_papers_numbers_and_no_others(table):
    ours = {}
    for r in table.itertuples():
        key = _key(r.source, r.model, r.task, r.shots, r.ways, r.inner_shots, r.induction, r.metric)
        assert key not in ours, key  # one row per number
        ours[key] = (r.score, bool(r.secondary))
    papers = {_key(*row[:8]): (row[8], row[9]) for row in PAPERS}
    assert ours == papers


def test_chance_levels_are_marked_rows(table):
    rows = table[table.model.str.contains("chance")]
    assert sorted(zip(rows.ways, rows.score)) == [(2, 50.0), (5, 20.0)]
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
