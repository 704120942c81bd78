"""A model of one's own that raises or exits (``SystemExit`` of any code included) in its constructor, its
``generate`` or its ``loglikelihood`` fails the command with one line naming the model, the method and the
exception (exit status 2), in run, eval, sweep and check: a CI gate never goes green having checked nothing.
Ctrl-C keeps its own meaning (exit status 130, finished samples kept)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from tests.robustness.conftest import cli_error

ROOT = Path(__file__).resolve().parents[2]

MODELS = """
import sys


class Exits:
    name = "exits"

    def __init__(self, code=0):
        self.code = code

    def generate(self, prompts, max_new_tokens, stop):
        sys.exit(self.code)


class Raises:
    def generate(self, prompts, max_new_tokens, stop):
        raise ValueError("no answer today")


class BadInit:
    def __init__(self):
        raise RuntimeError("weights missing\\nsecond line")

    def generate(self, prompts, max_new_tokens, stop):
        return ["x"] * len(prompts)


class ExitInit:
    def __init__(self):
        raise SystemExit(0)

    def generate(self, prompts, max_new_tokens, stop):
        return ["x"] * len(prompts)


class BadRank:
    def generate(self, prompts, max_new_tokens, stop):
        return ["dax"] * len(prompts)

    def loglikelihood(self, prompts, continuations):
        raise SystemExit(3)


class BadLengths:
    def generate(self, prompts, max_new_tokens, stop):
        return ["x"] * len(prompts)

    def context_length(self):
        return 10

    def prompt_lengths(self, prompts):
        raise GeneratorExit("odd")


class BadTo:
    def generate(self, prompts, max_new_tokens, stop):
        return ["x"] * len(prompts)

    def to(self, device):
        sys.exit(0)


class BadIdentity:
    def generate(self, prompts, max_new_tokens, stop):
        return ["x"] * len(prompts)

    def identity(self):
        raise SystemExit("bye")


class Interrupted:
    def generate(self, prompts, max_new_tokens, stop):
        raise KeyboardInterrupt
"""

RUN = ["--task", "easyvqa-tiny", "--limit", "3", "--quiet", "--images", "real"]


@pytest.fixture
def models(tmp_path: Path, fresh_home: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


@pytest.mark.parametrize("command", ["run", "eval"])
@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        ("Exits", "model exits: generate raised SystemExit"),
        ("Exits --set code=1", "model exits: generate raised SystemExit: 1"),
        ("Raises", "model Raises: generate raised ValueError: no answer today"),
        ("BadInit", "constructing the model raised RuntimeError: weights missing | second line"),
        ("ExitInit", "constructing the model raised SystemExit"),
        ("BadLengths", "model BadLengths: prompt_lengths raised GeneratorExit: odd"),
        ("BadTo", "model BadTo: to raised SystemExit: 0"),
        ("BadIdentity", "model BadIdentity: identity raised SystemExit: bye"),
    ],
)
def test_user_code_that_raises_or_exits_is_one_line(models, capsys, command, cls, expected):
    name, *rest = cls.split()
    line = cli_error(capsys, [command, "--model", f"{models}:{name}", *rest, *RUN])
    assert expected in line, line


def test_loglikelihood_that_exits_is_one_line(models, capsys):
    args = ["run", "--task", "miniimagenet-open-tiny", "--model", f"{models}:BadRank", "--limit", "2", "--quiet",
            "--images", "real", "--task-set", "answer=rank"]  # fmt: skip
    line = cli_error(capsys, args)
    assert "model BadRank: loglikelihood raised SystemExit: 3" in line, line


def test_a_module_that_exits_when_imported_is_one_line(tmp_path, fresh_home, capsys):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\n")
    line = cli_error(capsys, ["run", "--model", f"{tmp_path / 'quits.py'}:M", *RUN])
    assert "importing it raised SystemExit: 0" in line, line


@pytest.mark.slow
def test_exit_zero_fails_the_process_not_only_main(models):
    """As a CI job sees it: a separate process, its exit status, one line on stderr."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--model", f"{models}:Exits", *RUN],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert lines == [lines[-1]] and "model exits: generate raised SystemExit" in lines[-1], done.stderr


def test_sweep_and_check_fail_when_the_model_exits(models, tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"tasks: [easyvqa-tiny]\nmodels: ['{models}:Exits']\nshots: [0]\nseeds: [0]\nlimit: 3\n")
    assert "generate raised SystemExit" in cli_error(capsys, ["sweep", str(grid), "--quiet"])
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(
        f"tolerance: 1.0\ncells:\n  - task: easyvqa-tiny\n    model: '{models}:Exits'\n    limit: 3\n    expected: 50.0\n"
    )
    line = cli_error(capsys, ["check", "--baseline", str(baseline), "--quiet"])
    assert "model exits: generate raised SystemExit" in line, line
    assert "none regressed" not in capsys.readouterr().out


def test_ctrl_c_in_user_code_is_still_an_interrupt(models, capsys):
    assert main(["run", "--model", f"{models}:Interrupted", *RUN]) == 130
    assert "interrupted" in capsys.readouterr().err
