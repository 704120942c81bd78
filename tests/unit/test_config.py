"""Config loading: strict fields, types, YAML syntax errors with line numbers; registries and names."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import registry
from harness.config import TaskConfig, load_yaml, parse_overrides, replace_fields
from harness.errors import HarnessError
from harness.models import groups

GOOD_TASK = "name: t\nversion: 1\nkind: vqa\nsource: tiny-shapes\nsplit: test\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


def test_task_yaml_loads(tmp_path):
    task = load_yaml(TaskConfig, write(tmp_path, GOOD_TASK + 'stop: ["\\n", "."]\n'))
    assert task.stop == ("\n", ".") and task.max_new_tokens == 8


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD_TASK + "promt: x\n", "t.yaml: unknown field 'promt' (did you mean 'prompt'?)"),
        ("name: t\nversion: 1\nkind: vqa\nsplit: test\n", "missing required field 'source'"),
        (GOOD_TASK.replace("version: 1", "version: one"), "field 'version' must be int, got 'one'"),
        (GOOD_TASK + "stop: 3\n", "field 'stop' must be"),
        (GOOD_TASK + "normalize_prediction: 1\n", "field 'normalize_prediction' must be bool"),
        ("- just\n- a list\n", "expected a mapping"),
        ("name: t\n  bad: [indent\n", "t.yaml:2: YAML syntax error"),
    ],
)
def test_bad_yaml_is_one_line_naming_file_and_field(tmp_path, text, message):
    with pytest.raises(HarnessError) as err:
        load_yaml(TaskConfig, write(tmp_path, text))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_recipes_follow_the_design_table():
    # recipe: (train_lm, lm_init, train_encoder, learning rates of the encoder, map and LM, train_images, eval_images)
    expect = {
        "frozen": (False, "pretrained", True, (3e-4, 3e-4, None), "real", "real"),
        "finetuned": (True, "pretrained", True, (3e-4, 3e-4, 1e-5), "real", "real"),  # the LM slower, the rest not
        "scratch": (True, "random", True, (3e-4, 3e-4, 1e-5), "real", "real"),
        "train-blind": (False, "pretrained", True, (3e-4, 3e-4, None), "black", "black"),
        "linear": (False, "pretrained", False, (None, 3e-4, None), "real", "real"),
        "supervised": (
            False,
            "pretrained",
            True,
            (3e-4, 3e-4, None),
            "real",
            "real",
        ),  # frozen on question-answer pairs
    }
    assert set(registry.RECIPES.names()) == set(expect)
    assert registry.RECIPES.get("supervised").train_text == "vqa"
    for name, row in expect.items():
        r = registry.RECIPES.get(name)
        rates = tuple(r.group_lr(g) if g in groups.trained(r) else None for g in ("encoder", "map", "lm"))
        assert (r.train_lm, r.lm_init, r.train_encoder, rates, r.train_images, r.eval_images) == row
        assert r.betas == (0.9, 0.95)


def test_overrides_are_typed_and_checked():
    assert parse_overrides(["steps=20", "lr=1e-3", "train_data=tiny-shapes"]) == {
        "steps": 20, "lr": 1e-3, "train_data": "tiny-shapes"}  # fmt: skip
    frozen = registry.RECIPES.get("frozen")
    assert replace_fields(frozen, {"steps": 5}, "x").steps == 5
    with pytest.raises(HarnessError, match="invalid n_prefix"):
        replace_fields(frozen, {"n_prefix": 0}, "x")
    with pytest.raises(HarnessError, match="key=value"):
        parse_overrides(["steps"])


@pytest.mark.parametrize(
    "name, lm, recipe",
    [
        ("gpt2-frozen", "gpt2", "frozen"),
        ("gpt2-medium-train-blind", "gpt2-medium", "train-blind"),
        ("smollm2-135m-finetuned", "smollm2-135m", "finetuned"),
        ("smollm2-frozen", "smollm2-135m", "frozen"),
        ("qwen2.5-coder-linear", "qwen2.5-coder-0.5b", "linear"),
        ("opt-1.3b-scratch", "opt-1.3b", "scratch"),
    ],
)
def test_model_names(name, lm, recipe):
    parsed = registry.parse_model_name(name)
    assert (parsed.lm.key, parsed.recipe.name) == (lm, recipe)


def test_registry_wildcards_and_suggestions():
    assert registry.LMS.names("pythia-*") == ["pythia-160m", "pythia-1b", "pythia-410m"]
    assert {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "opt-125m", "opt-350m", "opt-1.3b",
            "smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b"} <= set(registry.LMS.names())  # fmt: skip
    assert {"nf_resnet50", "resnet50", "efficientnet-lite0"} <= set(registry.ENCODERS.names())
    with pytest.raises(HarnessError, match="did you mean frozen"):
        registry.RECIPES.get("frozn")
    with pytest.raises(HarnessError, match="unknown model"):
        registry.parse_model_name("gpt2")


def test_user_recipe_files_are_picked_up_and_named_by_their_file(tmp_path, monkeypatch):
    from harness import paths

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    (tmp_path / "recipes").mkdir()
    frozen = (paths.REPO_ROOT / "baselines" / "recipes" / "frozen.yaml").read_text()
    (tmp_path / "recipes" / "frozen-long.yaml").write_text(frozen.replace("steps: 120", "steps: 5000"))
    registry._load.cache_clear()
    try:
        assert registry.parse_model_name("gpt2-frozen-long").recipe.steps == 5000
    finally:
        registry._load.cache_clear()


def test_device_choice():
    import torch

    from harness.models.devices import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(HarnessError, match="unknown device 'gpu0'"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(HarnessError, match="no CUDA GPU"):
            pick_device("cuda")


def test_an_optional_field_given_a_wrong_type_is_a_one_line_error_not_a_crash():
    from dataclasses import dataclass

    from harness.config import from_mapping

    @dataclass(frozen=True)
    class Cell:
        score: float | None = None

    assert from_mapping(Cell, {"score": 3}, "cell.yaml").score == 3.0
    assert from_mapping(Cell, {"score": None}, "cell.yaml").score is None
    with pytest.raises(HarnessError) as err:
        from_mapping(Cell, {"score": "high"}, "cell.yaml")
    assert "cell.yaml" in str(err.value) and "score" in str(err.value) and "\n" not in str(err.value)
