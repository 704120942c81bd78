"""`harness bench` end to end in a tiny configuration (tiny LM, smoke sizes): its table and JSON record."""

from __future__ import annotations

import json

from harness.cli import main

MEASUREMENTS = {"train", "train_model_flops", "answers_zero_shot", "answers_4_shot", "answers_4_shot_shared_support",
                "cost_4_shot_vs_zero_shot", "task_wall"}  # fmt: skip


def test_bench_writes_its_record_with_every_figure_beside_the_naive_one(tiny_hub, tmp_path, capsys):
    args = ["bench", "--lm", "gpt2", "--device", "cpu", "--size", "smoke", "--image-size", "32",
            "--task", "easyvqa-tiny", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    [path] = tmp_path.glob("*-cpu.json")
    assert str(path) in out and "x naive" in out
    record = json.loads(path.read_text())
    assert {"date", "environment", "settings", "timing", "measurements", "task_run", "flops", "correctness"} <= set(
        record
    )
    assert record["environment"]["device_type"] == "cpu" and record["environment"]["torch"]
    assert record["settings"]["lm"] == "gpt2" and record["settings"]["train_batch"] == 4
    assert MEASUREMENTS <= set(record["measurements"])
    for name, figure in record["measurements"].items():
        assert {"value", "unit", "naive", "ratio"} <= set(figure), name
        assert figure["value"] > 0 and figure["naive"] > 0, name
        assert name == "cost_4_shot_vs_zero_shot" or figure["ratio"] > 0, name
    assert set(record["task_run"]["split_seconds"]) == {"data", "encode", "prefill", "decode", "score", "other"}
    assert record["flops"]["train_flops_per_image"] > 0 and "formula" in record["flops"]
    assert record["flops"]["peak_bf16_flops"] is None  # no known peak for a CPU
    for name, agreement in record["correctness"]["answers_equal_to_naive"].items():
        assert agreement["compared"] > 0 and agreement["equal"] == agreement["compared"], name
    assert record["correctness"]["first_batch_loss"]["relative_difference"] < 1e-4


def test_bench_bad_input_is_one_line_and_exit_2(tiny_hub, tmp_path, capsys):
    assert main(["bench", "--lm", "gpt3", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "gpt3" in err and "\n" not in err
    assert main(["bench", "--lm", "gpt2", "--task", "coco-tiny", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "VQA task" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
