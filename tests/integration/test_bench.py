"""`harness bench` end to end in a tiny configuration (tiny LM, smoke sizes): its table and JSON record."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main

MEASUREMENTS = {"train", "train_model_flops", "answers_zero_shot", "answers_4_shot", "answers_4_shot_shared_support",
                "cost_4_shot_vs_zero_shot", "task_wall"}  # fmt: skip


@pytest.mark.slow
def test_bench_writes_its_record_with_every_figure_beside_the_naive_one(tiny_hub, tmp_path, capsys):
    args = ["bench", "--lm", "gpt2", "--device", "cpu", "--size", "smoke", "--image-size", "32",
            "--task", "easyvqa-tiny", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    [path] = tmp_path.glob("*-cpu.json")
    assert str(path) in out and "x naive" in out
    record = json.loads(path.read_text())
    assert {"date", "environment", "settings", "timing", "measurements", "task_run", "flops", "correctness",
            "precision", "matmul_rates_gflops"} <= set(record)  # fmt: skip
    # This process's kernels are pinned to AVX2 (tests/conftest.py), which has no bf16: auto runs fp32, and says why.
    assert record["precision"]["auto"] == "fp32" and "no native bf16" in record["precision"]["reason"]
    assert record["precision"]["measured"][0] == "fp32"
    assert record["matmul_rates_gflops"]["fp32"] > 0 and record["matmul_rates_gflops"]["bf16"] > 0
    assert record["environment"]["device_type"] == "cpu" and record["environment"]["torch"]
    assert record["settings"]["lm"] == "gpt2" and record["settings"]["train_batch"] == 4
    assert MEASUREMENTS <= set(record["measurements"])
    for precision in record["precision"]["measured"]:  # each precision's figures, suffixed
        assert {f"{m}_{precision}" for m in MEASUREMENTS} <= set(record["measurements"])
    assert {"train_fraction_of_fp32_matmul", "train_fraction_of_bf16_matmul"} <= set(record["measurements"])
    for name, figure in record["measurements"].items():
        assert {"value", "unit", "naive", "ratio"} <= set(figure), name
        assert figure["value"] > 0 and figure["naive"] > 0, name
        assert name.startswith("cost_4_shot_vs_zero_shot") or figure["ratio"] > 0, name
    assert set(record["task_run"]["fp32"]["split_seconds"]) == {"data", "encode", "prefill", "decode", "score", "other"}
    assert record["flops"]["train_flops_per_image"] > 0 and "formula" in record["flops"]
    assert record["flops"]["peak_bf16_flops"] is None  # no known peak for a CPU
    for name, agreement in record["correctness"]["answers_equal_to_naive"].items():
        assert agreement["compared"] > 0, name
        assert "(bf16)" in name or agreement["equal"] == agreement["compared"], name  # fp32: the naive answers
    losses = record["correctness"]["first_batch_loss"]
    assert losses["fp32"]["relative_difference"] < 1e-4
    assert "bf16" not in losses or losses["bf16"]["relative_difference"] < 0.05


def test_bench_bad_input_is_one_line_and_exit_2(tiny_hub, tmp_path, capsys):
    assert main(["bench", "--lm", "gpt3", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "gpt3" in err and "\n" not in err
    assert main(["bench", "--lm", "gpt2", "--task", "coco-tiny", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "VQA task" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
