"""Training-loss curves: `harness plot` writes one PNG per trained model and a combined one, `harness report`
shows the combined plot with a table whose numbers are those of each train_log.jsonl."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.training import checkpoint, curves

PNG = b"\x89PNG\r\n\x1a\n"
SETS = ["steps=12", "batch_size=4", "image_size=32", "save_every=6", "train_data=tiny-shapes", "seed=5"]


def _flags(sets: list[str]) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


@pytest.fixture(scope="module")
def trained(tiny_hub, tmp_path_factory):
    """A home of its own: gpt2-frozen trained twice (seeds 5 and 6: one name, two fingerprints), one run,
    and a torn line at the end of the first model's log (a kill mid-write)."""
    folder = tmp_path_factory.mktemp("losses")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(folder / "home"))
        assert main(["train", "--model", "gpt2-frozen", "--quiet", *_flags(SETS)]) == 0
        args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--shots", "0", "--limit", "4"]
        assert main([*args, "--images", "real", "--quiet", *_flags(SETS)]) == 0
        other = [*SETS[:-1], "seed=6", "steps=4", "save_every=2"]
        assert main(["train", "--model", "gpt2-frozen", "--quiet", *_flags(other)]) == 0
        models = curves.trained_models()
        assert [len(m.curve) for m in models] in ([12, 4], [4, 12])
        first = next(m for m in models if len(m.curve) == 12)
        with open(first.folder / curves.CURVE, "a") as f:
            f.write('{"step": 13, "loss": 0.12')  # torn: no closing brace, no newline
        (folder / "empty-home" / "checkpoints" / "gpt2-frozen-0000").mkdir(parents=True)  # no log: not counted
    return folder, models


def _raw(folder: Path) -> list[dict]:
    """The log as written, whole lines only, each step's last line."""
    by_step = {}
    for line in (folder / curves.CURVE).read_text().splitlines():
        if line.endswith("}"):
            entry = json.loads(line)
            by_step[entry["step"]] = entry
    return [by_step[k] for k in sorted(by_step)]


@pytest.mark.slow
def test_the_reader_is_the_writers_file_and_skips_a_torn_line(trained):
    _, models = trained
    assert curves.CHECKPOINT == checkpoint.FILENAME
    for model in models:
        assert model.name == "gpt2-frozen" and model.folder.name == f"gpt2-frozen-{model.fingerprint}"
        raw = _raw(model.folder)
        assert curves.training_curve(model.folder) == raw
        assert [e["step"] for e in raw] == list(range(1, len(raw) + 1))
    assert len({m.fingerprint for m in models}) == 2
    assert {m.recipe["seed"] for m in models} == {5, 6}
    assert curves.recipe_changes(models[0].recipe)["image_size"] == 32
    # Seconds restart at a resumed training: each process's time is summed.
    resumed = [{"step": 1, "seconds": 2.0}, {"step": 2, "seconds": 3.0}, {"step": 3, "seconds": 1.5}]
    assert curves.training_seconds(resumed) == 4.5 and curves.training_seconds([{"step": 1}]) is None


@pytest.mark.slow
def test_plot_writes_a_png_per_model_and_the_combined_curves_without_torch(trained):
    folder, models = trained
    out = folder / "plots"
    script = "import sys; from harness.cli.main import main; code = main(['plot', '--out', sys.argv[1]]); " \
             "print('exit', code, 'torch' in sys.modules)"  # fmt: skip
    env = {**os.environ, "HARNESS_HOME": str(folder / "home")}
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.splitlines()[-1] == "exit 0 False", done.stderr[-2000:]
    for model in models:
        assert (out / f"loss-gpt2-frozen-{model.fingerprint}.png").read_bytes().startswith(PNG)
    assert (out / "loss-curves.png").read_bytes().startswith(PNG)
    assert list(out.glob("ablation-easyvqa-tiny-*.png"))  # the results' plots as before
    # A home whose checkpoints have no log and no runs: nothing to plot, said as before.
    env["HARNESS_HOME"] = str(folder / "empty-home")
    done = subprocess.run([sys.executable, "-m", "harness", "plot", "--out", str(folder / "none")], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "no finished runs" in done.stderr
    assert not list((folder / "none").glob("*.png"))


def test_report_shows_the_loss_curves_and_the_numbers_of_each_log(trained, monkeypatch):
    folder, models = trained
    monkeypatch.setenv("HARNESS_HOME", str(folder / "home"))
    assert main(["report", "--out", str(folder / "report"), "--baseline", "gpt2-frozen"]) == 0
    page = (folder / "report" / "index.html").read_text()
    section = page.split("<h2>Training</h2>")[1].split("<h2>Runs</h2>")[0]
    assert '<img src="data:image/png;base64,' in section and "loss-curves" in section
    rows = re.findall(r"<tr>\s*<td>gpt2-frozen</td>(.*?)</tr>", section, re.S)
    assert len(rows) == 2
    for model in models:
        raw = _raw(model.folder)
        losses = [e["loss"] for e in raw]
        first, last = sum(losses[:10]) / len(losses[:10]), sum(losses[-10:]) / len(losses[-10:])
        row = next(r for r in rows if f"<td>{model.fingerprint}</td>" in r)
        cells = re.findall(r"<td>(.*?)</td>", row)
        assert cells[1:5] == [str(len(raw)), f"{first:.4g}", f"{last:.4g}", f"{raw[-1]['seconds']:.4g}"]
        summary = next(r for r in curves.summary_rows([model]))
        assert (summary["steps"], summary["first_loss"], summary["last_loss"]) == (len(raw), first, last)
    assert "## Training loss" in (folder / "report" / "summary.md").read_text()
