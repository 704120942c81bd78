"""--skip-bad-samples: a query whose image cannot be read is skipped and counted, never silently dropped."""

from __future__ import annotations

import json

from harness.cli.main import main


def test_a_corrupt_image_stops_the_run_or_is_skipped_and_counted(tiny_hub, fast_recipe, vqav2_dir, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_VQAV2_DIR", str(vqav2_dir))
    broken = vqav2_dir / "val2014" / "COCO_val2014_000000000073.jpg"
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated JPEG
    sets = [a for s in [*fast_recipe, "seed=41"] for a in ("--set", s)]
    args = ["run", "--task", "vqav2", "--model", "gpt2-frozen", "--images", "real", "--quiet", *sets]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(broken) in err and "--skip-bad-samples" in err

    assert main([*args, "--skip-bad-samples"]) == 0
    out = capsys.readouterr().out
    questions = json.loads((vqav2_dir / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())["questions"]
    n_bad = sum(q["image_id"] == 73 for q in questions)
    assert n_bad >= 1 and f"({n_bad} skipped)" in out
    from harness import paths

    folder = next((paths.home() / "runs" / "vqav2").glob("*/*/metrics.json")).parent
    metrics = json.loads((folder / "metrics.json").read_text())
    samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
    skipped = [s for s in samples if "skipped" in s]
    assert metrics["skipped"] == len(skipped) == n_bad and metrics["n"] == len(samples) - n_bad
    assert all(str(broken) in s["skipped"] for s in skipped)
    assert main(["score", str(folder)]) == 0 and "unchanged" in capsys.readouterr().out  # re-scoring keeps them
    assert sum("skipped" in json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()) == n_bad
    assert main(["table", "--task", "vqav2", "--no-published"]) == 0
    assert f"[{n_bad} skipped]" in capsys.readouterr().out
