"""The no-model baselines in a real run: every sample of a few-shot cell scores them, the run record holds their
means on its own scale, `harness score` computes them again from samples.jsonl, and a zero-shot cell has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.metrics.vqa import aggregate


def _run(fast_recipe, caplog, shots: str) -> Path:
    caplog.set_level("INFO")
    caplog.clear()
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet", "--shots", shots,
            "--images", "real", "--limit", "16", *[a for s in fast_recipe for a in ("--set", s)]]  # fmt: skip
    assert main(args) == 0
    [folder] = [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]
    return folder


def _read(folder: Path) -> tuple[dict, list[dict]]:
    lines = (folder / "samples.jsonl").read_text().splitlines()
    return json.loads((folder / "metrics.json").read_text()), [json.loads(line) for line in lines]


@pytest.mark.slow
def test_a_two_shot_run_records_its_baselines_and_a_zero_shot_run_none(tiny_hub, fast_recipe, caplog, capsys):
    folder = _run(fast_recipe, caplog, "2")
    record, samples = _read(folder)
    assert set(record["baselines"]) == {"copy_last", "majority", "type_prior"}
    for name, value in record["baselines"].items():
        assert value == aggregate([s["baselines"][name] for s in samples]), name  # the samples' mean, in points
    for s in samples:
        assert len(s["support_answers"]) == 2 and s["prior_answer"]
        assert s["support_answers"][-1] in s["prompt"]
    # tiny-shapes asks about shape and colour: the prior answers each type with one of its own answers
    assert len({s["prior_answer"] for s in samples}) > 1
    config = json.loads((folder / "config.json").read_text())
    assert "baselines" not in json.dumps(config["settings"])  # an output, never part of the run's identity

    # `harness score` computes them again from the samples alone; a copy_last answer fixed by hand changes it.
    assert main(["score", str(folder)]) == 0 and "unchanged" in capsys.readouterr().out
    assert _read(folder)[0]["baselines"] == record["baselines"]
    missed = next(s for s in samples if s["baselines"]["copy_last"] == 0.0)
    missed["support_answers"][-1] = missed["references"][0]
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    assert main(["score", str(folder)]) == 0
    assert _read(folder)[0]["baselines"]["copy_last"] > record["baselines"]["copy_last"]

    zero = _run(fast_recipe, caplog, "0")
    record, samples = _read(zero)
    assert "baselines" not in record and not any("baselines" in s or "support_answers" in s for s in samples)


@pytest.mark.slow
def test_a_run_from_before_the_baselines_still_reads_back_and_rescores(tiny_hub, fast_recipe, caplog, capsys):
    folder = _run(fast_recipe, caplog, "1")
    record, samples = _read(folder)
    for s in samples:  # as an older version wrote them
        for key in ("support_answers", "prior_answer", "baselines"):
            s.pop(key)
    del record["baselines"]
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (folder / "metrics.json").write_text(json.dumps(record))
    assert _run(fast_recipe, caplog, "1") == folder and "(read back)" in caplog.text  # not evaluated again
    assert main(["score", str(folder)]) == 0 and "unchanged" in capsys.readouterr().out
    assert "baselines" not in _read(folder)[0]


def _run_task(fast_recipe, caplog, task: str, *extra: str) -> Path:
    caplog.set_level("INFO")
    caplog.clear()
    args = ["run", "--task", task, "--model", "gpt2-frozen", "--quiet", "--images", "real", *extra,
            *[a for s in fast_recipe for a in ("--set", s)]]  # fmt: skip
    assert main(args) == 0
    [folder] = [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]
    return folder


def test_naming_episodes_score_copying_the_last_name_shown(tiny_hub, fast_recipe, caplog):
    record, samples = _read(_run_task(fast_recipe, caplog, "miniimagenet-open-tiny", "--shots", "2", "--limit", "12"))
    assert set(record["baselines"]) == {"copy_last"}
    for s in samples:
        assert len(s["support_answers"]) == 2 * 2  # 2 ways x 2 inner shots, in prompt order
        assert s["baselines"]["copy_last"] == float(s["support_answers"][-1] == s["references"][0])
    assert record["baselines"]["copy_last"] == round(100 * sum(s["baselines"]["copy_last"] for s in samples) / 12, 2)


@pytest.mark.slow
def test_a_caption_cell_scores_the_last_shown_caption_with_its_corpus_metric(tiny_hub, fast_recipe, caplog):
    record, samples = _read(_run_task(fast_recipe, caplog, "coco-tiny", "--shots", "1", "--limit", "8"))
    assert set(record["baselines"]) == {"copy_last"}
    assert all(isinstance(s["baselines"]["copy_last"], float) for s in samples)
    assert record["baselines"]["copy_last"] > 0  # another image's caption shares words with these
