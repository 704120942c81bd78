"""Official-layout VQA files whose questions do not have exactly 10 answers. The official score leaves each
answer out in turn and gives min(1, matches among the others / 3): with 1 answer an exact prediction scores 0,
with 3 at most 2/3. The official VQAv2 and OK-VQA files always have 10, so other counts are refused in one
line naming the file, the question id and the count, never scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.metrics.vqa import vqa_accuracy
from tests.robustness.conftest import cli_error, one_line
from tests.unit.test_vqa_official import _edit, load_val, vqav2_annotations

QID = 42002  # a question of the val2014 fixture


def _answers_of(qid: int, count: int):
    def change(obj: dict) -> None:
        for annotation in obj["annotations"]:
            if annotation["question_id"] == qid:
                kept = annotation["answers"][:count]
                while len(kept) < count:  # more than 10: repeat the first ones with fresh ids
                    kept.append({**annotation["answers"][len(kept) % 10], "answer_id": len(kept) + 1})
                annotation["answers"] = kept

    return change


def test_the_reason_why_the_official_formula_needs_ten_answers():
    assert vqa_accuracy("red", ["red"] * 10) == 1.0
    assert vqa_accuracy("red", ["red"]) == 0.0  # nobody else to agree with
    assert vqa_accuracy("red", ["red"] * 3) == pytest.approx(2 / 3)


@pytest.mark.parametrize("count", [1, 3, 9, 11])
def test_a_question_with_other_than_ten_answers_is_one_line_naming_file_id_and_count(vqav2_dir, count):
    path = _edit(vqav2_dir, "annotations", _answers_of(QID, count))
    with pytest.raises(HarnessError) as excinfo:
        load_val(vqav2_dir)
    line = one_line(excinfo)
    assert line.startswith(f"{path}: annotations[") and f"(question_id {QID}): {count} answer(s)" in line, line
    assert "have 10" in line


def test_every_question_with_one_answer_is_refused_at_the_first(vqav2_dir):
    def one_each(obj: dict) -> None:
        for annotation in obj["annotations"]:
            annotation["answers"] = annotation["answers"][:1]

    path = _edit(vqav2_dir, "annotations", one_each)
    first = json.loads(path.read_text())["annotations"][0]["question_id"]
    with pytest.raises(HarnessError) as excinfo:
        load_val(vqav2_dir)
    assert one_line(excinfo) == (
        f"{path}: annotations[0] (question_id {first}): 1 answer(s), official VQA files have 10 (damaged or foreign?)"
    )


def test_ten_answers_still_load(vqav2_dir):
    _edit(vqav2_dir, "annotations", _answers_of(QID, 10))
    rows = load_val(vqav2_dir).splits["val"]
    assert rows and all(len(row.answers) == 10 for row in rows)
    expected = {a["question_id"] for a in vqav2_annotations("val2014")["annotations"]}
    assert {int(row.id) for row in rows} == expected


@pytest.mark.parametrize("count", [1, 3])
def test_run_on_such_files_exits_2_with_one_line(fresh_home, vqav2_dir, monkeypatch, capsys, tmp_path, count):
    monkeypatch.setenv("HARNESS_VQAV2_DIR", str(vqav2_dir))
    path = _edit(vqav2_dir, "annotations", _answers_of(QID, count))
    model = tmp_path / "echo.py"
    model.write_text(
        "class Echo:\n    def generate(self, prompts, max_new_tokens, stop):\n        return ['yes' for _ in prompts]\n"
    )
    args = ["run", "--task", "vqav2", "--model", f"{model}:Echo", "--limit", "2", "--images", "real", "--quiet"]
    line = cli_error(capsys, args)
    assert str(path) in line and f"(question_id {QID}): {count} answer(s)" in line, line
    assert not list(Path(fresh_home).glob("runs/**/metrics.json"))
