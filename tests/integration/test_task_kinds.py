"""Every task kind end to end on its tiny twin, through the CLI, with the tiny hub LM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main


def _run(task: str, fast_recipe: list[str], caplog, *extra: str) -> list[Path]:
    caplog.set_level("INFO")
    caplog.clear()
    args = ["run", "--task", task, "--model", "gpt2-frozen", "--quiet", "--images", "real", *extra]
    assert main(args + [a for s in fast_recipe for a in ("--set", s)]) == 0
    return [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]


@pytest.mark.slow
def test_caption_task_scores_with_pycocoevalcap(tiny_hub, fast_recipe, capsys, caplog):
    (folder,) = _run("coco-tiny", fast_recipe, caplog)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"} <= set(metrics)
    assert metrics["metric"] == "CIDEr" and metrics["score"] == pytest.approx(metrics["CIDEr"], abs=0.02)
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == metrics["n"] == 60 and all(isinstance(s["score"], float) for s in samples)
    assert "CIDEr" in capsys.readouterr().out


def test_naming_task_runs_frozen_protocol_episodes(tiny_hub, fast_recipe, caplog):
    (folder,) = _run(
        "miniimagenet-open-tiny", fast_recipe, caplog, "--task-set", "induction=true", "--task-set", "ways=3"
    )
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 40
    prompt = samples[0]["prompt"]
    assert prompt.startswith("Answer with ") and prompt.count("<image:") == 4  # 3 support + query
    assert prompt.endswith("Question: What is this? Answer: This is a")
    assert all(s["score"] in (0.0, 1.0) for s in samples)


def test_vqa_few_shot_prompts_carry_their_own_images(tiny_hub, fast_recipe, caplog):
    (folder,) = _run("easyvqa-tiny", fast_recipe, caplog, "--shots", "2")
    sample = json.loads((folder / "samples.jsonl").read_text().splitlines()[0])
    assert sample["prompt"].count("<image:train/") == 2 and sample["prompt"].count("<image:test/") == 1


def test_naming_shots_are_inner_shots(tiny_hub, fast_recipe, caplog):
    (folder,) = _run("miniimagenet-open-tiny", fast_recipe, caplog, "--shots", "3")
    sample = json.loads((folder / "samples.jsonl").read_text().splitlines()[0])
    assert sample["prompt"].count("<image:") == 2 * 3 + 1  # 2 ways x 3 inner shots, then the query
    assert json.loads((folder / "metrics.json").read_text())["shots"] == 3  # recorded as inner shots
