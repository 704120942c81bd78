"""One cell is resolved once: its rows drawn once, its task fingerprint taken once, and its model's checkpoint
read once (none re-read after a fresh training), counted while `harness run` and `harness eval` run a cell of
easyvqa-tiny end to end."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.cli.main import main
from harness.evaluation import tasks
from harness.models.prefix import VisualPrefixModel
from harness.training import checkpoint


@pytest.fixture
def calls(monkeypatch) -> Counter:
    counts: Counter = Counter()
    # Each counted where it is looked up on every call: a module's attribute, a class's method.
    for owner, name in ((tasks, "rows"), (tasks, "fingerprint"), (checkpoint, "load"), (VisualPrefixModel, "__init__")):
        real, label = getattr(owner, name), f"{owner.__name__.rpartition('.')[2]}.{name}"

        def counting(*args, _real=real, _label=label, **kwargs):
            counts[_label] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)
    return counts


def _model(command: str, fast_recipe: list[str]) -> list[str]:
    sets = [a for s in [*fast_recipe, "seed=81"] for a in ("--set", s)]
    return [command, "--model", "gpt2-frozen", "--quiet", "--device", "cpu", *sets]


def _cell(command: str, fast_recipe: list[str], images: str = "real", seed: int = 0) -> list[str]:
    task = ["--task", "easyvqa-tiny", "--images", images, "--limit", "6", "--seed", str(seed)]
    return [*_model(command, fast_recipe), *task]


@pytest.mark.slow
def test_a_fresh_training_and_its_cell_resolve_everything_once(tiny_hub, fast_recipe, tmp_path, monkeypatch, calls):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    assert main(_cell("run", fast_recipe)) == 0
    print(dict(calls))
    # One look for a checkpoint (there is none), one model built and trained, and no reload after training.
    assert calls == {"tasks.rows": 1, "tasks.fingerprint": 1, "checkpoint.load": 1, "VisualPrefixModel.__init__": 1}


@pytest.mark.slow
def test_a_model_trained_before_is_read_once_and_each_cell_once(tiny_hub, fast_recipe, tmp_path, monkeypatch, calls):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    assert main(_model("train", fast_recipe)) == 0
    calls.clear()
    assert main(_cell("eval", fast_recipe, seed=1)) == 0
    print(dict(calls))
    assert calls == {"tasks.rows": 1, "tasks.fingerprint": 1, "checkpoint.load": 1, "VisualPrefixModel.__init__": 1}
    calls.clear()
    # Two cells (real and black) of one model: the checkpoint read once, each cell resolved once.
    assert main(_cell("eval", fast_recipe, "both", seed=2)) == 0
    print(dict(calls))
    assert calls == {"tasks.rows": 2, "tasks.fingerprint": 2, "checkpoint.load": 1, "VisualPrefixModel.__init__": 1}
