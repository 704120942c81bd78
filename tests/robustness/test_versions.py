"""Two versions of one model name (a user's recipe shadowing a built-in one, or a --set variant) can be named
and compared (issue 16); and what used to be a traceback is one line: training settings torch would refuse
in a step, a model of one's own whose constructor (or module) raises, with --debug to see the traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import registry
from harness.cli.main import main
from harness.errors import HarnessError
from tests.robustness.conftest import FAST_SETS, cli_error, recorded

REPO = Path(__file__).resolve().parents[2]
RUN = ["run", "--model", "gpt2-frozen", "--images", "real", "--quiet", "--limit", "8", *FAST_SETS]


def ok(capsys, args: list[str]) -> str:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return out


@pytest.mark.slow
def test_two_versions_of_one_model_name_are_named_as_the_tables_name_them(home, capsys, caplog, tmp_path):
    ok(capsys, [*RUN, "--task", "easyvqa-tiny"])
    (home / "recipes").mkdir()
    (home / "recipes" / "frozen.yaml").write_text("base: frozen\nn_prefix: 3\n")  # shadows the built-in recipe
    registry._load.cache_clear()
    ok(capsys, [*RUN, "--task", "easyvqa-tiny"])
    ok(capsys, [*RUN, "--task", "miniimagenet-open-tiny", "--limit", "4"])
    assert "shadows" in caplog.text
    first, second = (
        f"gpt2-frozen [{json.loads(p.read_text())['model_family'][:8]}]"
        for p in sorted((home / "runs" / "easyvqa-tiny").rglob("metrics.json"), key=lambda p: p.stat().st_mtime)
    )
    before = recorded(home)
    table = ok(capsys, ["table", "--no-published"])
    assert first in table and second in table
    line = cli_error(capsys, ["compare", "--baseline", "gpt2-frozen"])
    assert "names 2 differently trained models: name one as the tables do, --baseline '" in line
    assert first in line and second in line
    out = ok(capsys, ["compare", "--baseline", first])
    assert f"Δ vs {first}" in out and second in out
    ok(capsys, ["report", "--out", str(tmp_path / "default")])  # no --baseline: it used to fail
    ok(capsys, ["report", "--baseline", first, "--out", str(tmp_path / "first")])
    assert f"Δ vs {first}" in (tmp_path / "first" / "summary.md").read_text()
    # Only the baseline ran this task: the page renders, saying what it could not compare.
    ok(capsys, ["report", "--task", "miniimagenet-open-tiny", "--baseline", second, "--out", str(tmp_path / "only")])
    page = (tmp_path / "only" / "index.html").read_text()
    assert f"No Δ table against {second}: no runs share a task, shots and samples" in page
    assert recorded(home) == before


def test_a_batch_of_one_through_a_training_batchnorm_is_one_line_saying_what_to_set(fresh_home, capsys, tiny_hub):
    line = cli_error(
        capsys, ["train", "--model", "gpt2-frozen", "--quiet", *FAST_SETS, "--set", "batch_size=1", "--set", "pairs=1"]
    )
    assert "BatchNorm" in line and "set batch_size to 2 or more (--set batch_size=2), or a larger image_size" in line
    assert not list((fresh_home / "checkpoints").rglob("*.safetensors"))  # nothing half-made left


RAISES = {
    "constructor": "class Boom:\n    def __init__(self):\n        raise RuntimeError('no weights here')\n",
    "module": "raise RuntimeError('no weights here')\nclass Boom:\n    pass\n",
}


@pytest.mark.parametrize("where", sorted(RAISES))
def test_a_model_of_ones_own_that_raises_is_one_line_and_debug_shows_the_traceback(fresh_home, capsys, tmp_path,
                                                                                     where):  # fmt: skip
    path = tmp_path / "boom.py"
    path.write_text(RAISES[where] + "    def generate(self, prompts, max_new_tokens, stop):\n        return []\n")
    args = ["run", "--task", "easyvqa-tiny", "--model", f"{path}:Boom", "--limit", "2", "--images", "real", "--quiet"]
    line = cli_error(capsys, args)
    said = "constructing the model" if where == "constructor" else "importing it"
    assert line.startswith(f"error: {path}") and f"{said} raised RuntimeError: no weights here" in line, line
    assert line.endswith("(--debug shows the traceback)")
    for debug in (["--debug", *args], [*args, "--debug"]):
        with pytest.raises(HarnessError) as info:
            main(debug)
        assert isinstance(info.value.__cause__, RuntimeError)
    assert recorded(fresh_home) == {}


@pytest.mark.slow
def test_debug_shows_the_traceback_from_the_real_entry_point(tmp_path):
    path = tmp_path / "boom.py"
    path.write_text(
        RAISES["constructor"] + "    def generate(self, prompts, max_new_tokens, stop):\n        return []\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(tmp_path / "home")}
    args = [sys.executable, "-m", "harness", "--debug", "run", "--task", "easyvqa-tiny", "--model", f"{path}:Boom"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: no weights here" in done.stderr
