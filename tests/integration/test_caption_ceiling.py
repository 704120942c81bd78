"""The text ceiling end to end: a naming run with every image given as its caption reads as prose, and its record
says so (a caption run made before captions read as prose is another run)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli.main import main


def test_a_caption_naming_run_is_prose_and_recorded_as_such(tiny_hub, fast_recipe, caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))  # its own home: the model it trains is no one else's
    caplog.set_level("INFO")
    args = ["run", "--task", "emoji6-open-tiny", "--model", "gpt2-frozen", "--images", "real,caption", "--quiet",
            "--limit", "6", "--shots", "3"]  # fmt: skip
    assert main(args + [a for s in fast_recipe for a in ("--set", s)]) == 0
    folders = [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]
    records = {json.loads((f / "metrics.json").read_text())["images"]: f for f in folders}
    caption = json.loads((records["caption"] / "metrics.json").read_text())
    assert caption["caption_text"] == "prose" and "caption_text" not in json.loads(
        (records["real"] / "metrics.json").read_text()
    )
    samples = [json.loads(line) for line in (records["caption"] / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6
    for sample in samples:
        assert "<image:" not in sample["prompt"]
        # 3 inner shots of 2 ways: six "caption. This is a name." pairs, then the query's caption and question.
        assert sample["prompt"].count(". This is a ") == 6 and ". Question: What is this?" in sample["prompt"]
        assert ".This" not in sample["prompt"]
