"""Bad names and bad YAML through the command line: exit status 2 and one line on stderr, never a
traceback, naming the value and the closest known names (or the file, line and field)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import paths, registry
from harness.cli.main import main
from tests.robustness.conftest import cli_error


@pytest.mark.parametrize(
    "args, expected",
    [
        # task
        (["show", "--task", "easyvq"], ["unknown task 'easyvq'", "did you mean", "easyvqa"]),
        (["eval", "--task", "cocoo", "--model", "gpt2-frozen"], ["unknown task 'cocoo'", "coco"]),
        # model name with no recognisable parts
        (["train", "--model", "zzz"], ["unknown model 'zzz'", "<lm>-<recipe>", "gpt2", "frozen"]),
        (["train", "--model", "gpt2-"], ["unknown model 'gpt2-'", "did you mean", "gpt2-frozen"]),
        # LM (the part before a known recipe)
        (["train", "--model", "gtp2-frozen"], ["unknown LM 'gtp2'", "did you mean", "gpt2"]),
        (["train", "--model", "smollm-frozen"], ["unknown LM 'smollm'", "smollm2"]),
        # recipe (the part after a known LM)
        (["train", "--model", "gpt2-frozn"], ["unknown model 'gpt2-frozn'", "unknown recipe 'frozn'", "frozen"]),
        (["train", "--model", "smollm2-lineer"], ["unknown recipe 'lineer'", "did you mean linear"]),
        # encoder (a recipe field)
        (["train", "--model", "gpt2-frozen", "--set", "encoder=resnet5"], ["unknown encoder 'resnet5'", "resnet50"]),
        # --set / --task-set values that are not YAML values
        (["train", "--model", "gpt2-frozen", "--set", "encoder=[x"], ["--set encoder: cannot read the value '[x'"]),
        (["show", "--task", "easyvqa-tiny", "--task-set", "stop=!!python/name:os.system"], ["--set stop: cannot read"]),
        (["train", "--model", "gpt2-frozen", "--set", "steps=1e400"], ["field 'steps' must be int, got inf"]),
        # evaluation options, refused before any model loads
        (
            ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--batch-size", "-1"],
            ["invalid batch_size = -1", "0: by device"],
        ),
        (["eval", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--limit", "-3"], ["--limit expects", "got -3"]),
    ],
)
def test_unknown_names_suggest_the_closest_known(capsys, args, expected):
    line = cli_error(capsys, args)
    for part in expected:
        assert part in line, line


def test_unknown_name_with_control_characters_stays_one_line(capsys):
    line = cli_error(capsys, ["show", "--task", "easy\nvqa\x1b[31m"])
    assert "unknown task 'easy\\nvqa\\x1b[31m'" in line


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """An empty $HARNESS_HOME with recipes/ and tasks/ folders; registries re-read before and after."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    (tmp_path / "recipes").mkdir()
    (tmp_path / "tasks").mkdir()
    registry._load.cache_clear()
    yield tmp_path
    registry._load.cache_clear()


GOOD_TASK = "version: 1\nkind: vqa\nsource: tiny-shapes\nsplit: test\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("version: 1\nkind: vqa\n  source: [x\n", ["mytask.yaml:3: YAML syntax error"]),
        (GOOD_TASK + "promt: x\n", ["mytask.yaml: unknown field 'promt'", "did you mean 'prompt'"]),
        (GOOD_TASK.replace("version: 1", "version: '1'"), ["field 'version' must be int, got '1'"]),
        (GOOD_TASK.replace("split: test\n", ""), ["mytask.yaml: missing required field 'split'"]),
        (GOOD_TASK + "split: train\n", ["mytask.yaml:5: YAML error: duplicate key 'split' (first on line 4)"]),
        (GOOD_TASK + "prompt: 'Q: {questoin}'\n", ["unknown placeholder {questoin}", "allowed: {question}"]),
        (GOOD_TASK + '!!python/object/apply:os.system ["echo pwned"]: 1\n', ["mytask.yaml:5: YAML error"]),
        (GOOD_TASK.replace("kind: vqa", "kind: vqa2"), ["unknown kind 'vqa2'"]),
    ],
)
def test_a_bad_task_file_is_one_line_naming_file_line_and_field(capsys, caplog, user_home, text, expected):
    (user_home / "tasks" / "mytask.yaml").write_text(text)
    line = cli_error(capsys, ["show", "--task", "mytask"])
    for part in expected:
        assert part in line, line
    assert "skipping" not in caplog.text  # the command that asked for it gets its error, and only that
    # Commands that do not use it go on without it, and say which file is skipped, once.
    registry._load.cache_clear()
    assert main(["list", "tasks"]) == 0
    assert "easyvqa-tiny" in capsys.readouterr().out
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping task mytask")]
    assert len(skipped) == 1 and "mytask.yaml" in skipped[0] and expected[0] in skipped[0], skipped
    assert main(["show", "--task", "easyvqa-tiny", "--n", "1"]) == 0  # and another task's command works
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda t: t.replace("steps: 120", "steps: 12o"), "field 'steps' must be int, got '12o'"),
        (lambda t: t.replace("steps: 120", "stepz: 120"), "unknown field 'stepz' (did you mean 'steps'?)"),
        (lambda t: t.replace("lr: 3.0e-4", "lr: -1.0"), "invalid lr = -1.0"),
        (lambda t: t + "lr: 1.0\n", "YAML error: duplicate key 'lr'"),
        (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("encoder:")), "missing required"),
    ],
)
def test_a_bad_recipe_file_is_one_line_naming_file_and_field(capsys, user_home, change, expected):
    frozen = (paths.REPO_ROOT / "baselines" / "recipes" / "frozen.yaml").read_text()
    assert "steps: 120" in frozen and "lr: 3.0e-4" in frozen and "\nencoder:" in frozen
    (user_home / "recipes" / "mine.yaml").write_text(change(frozen))
    line = cli_error(capsys, ["train", "--model", "gpt2-mine"])
    assert "mine.yaml" in line and expected in line, line


def test_an_unknown_data_source_in_a_task_file_suggests_the_closest(capsys, user_home):
    (user_home / "tasks" / "mytask.yaml").write_text(GOOD_TASK.replace("tiny-shapes", "tiny-shape"))
    line = cli_error(capsys, ["show", "--task", "mytask"])
    assert "unknown data source 'tiny-shape'; did you mean tiny-shapes" in line


def test_a_python_tag_in_yaml_is_refused_and_never_run(capsys, user_home):
    marker = user_home / "pwned"
    (user_home / "tasks" / "evil.yaml").write_text(
        GOOD_TASK + f'description: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    line = cli_error(capsys, ["show", "--task", "evil"])
    assert "evil.yaml:5: YAML error: could not determine a constructor" in line
    assert not marker.exists()


@pytest.mark.slow
def test_python_m_harness_prints_one_line_and_exits_2_without_a_traceback():
    """The real entry point, in a fresh interpreter: nothing but the error line on stderr."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "train", "--model", "gpt2-frozn"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown model 'gpt2-frozn': unknown recipe 'frozn'; did you mean frozen?"
