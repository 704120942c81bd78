"""Task and recipe YAML: safe loading only, line numbers for syntax errors, unknown keys, wrong types,
missing fields, duplicate keys, templates, alias bombs; and fuzzing: any mapping or any text gives a
config or a HarnessError, never another exception."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import (
    MAX_YAML_VALUES,
    Recipe,
    StrictLoader,
    TaskConfig,
    from_mapping,
    load_yaml,
    parse_overrides,
    parse_yaml,
    read_yaml,
)
from harness.errors import HarnessError
from tests.robustness.conftest import one_line

GOOD = {"name": "t", "version": 1, "kind": "vqa", "source": "tiny-shapes", "split": "test"}
GOOD_TEXT = "version: 1\nkind: vqa\nsource: tiny-shapes\nsplit: test\n"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_task(tmp_path: Path, text: str | bytes) -> TaskConfig:
    path = tmp_path / "t.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return load_yaml(TaskConfig, path, name="t")


@pytest.mark.parametrize(
    "text, expected",
    [
        # syntax errors, with the line number
        ("version: 1\nkind: [vqa\nsource: x\n", "t.yaml:3: YAML syntax error: expected ',' or ']'"),
        ("version: 1\n\tkind: vqa\n", "t.yaml:2: YAML syntax error"),
        ('version: 1\nprompt: "unterminated\n', "t.yaml:3: YAML syntax error"),
        ("version: 1\nkind: vqa\nsplit: \x07\n", "t.yaml:3: YAML syntax error: unacceptable character #x0007"),
        # unknown keys
        (GOOD_TEXT + "max_new_token: 3\n", "t.yaml: unknown field 'max_new_token' (did you mean 'max_new_tokens'?)"),
        (GOOD_TEXT + "1: x\n", "t.yaml: unknown field '1'"),
        # wrong types
        (GOOD_TEXT.replace("version: 1", "version: 1.5"), "field 'version' must be int, got 1.5"),
        (GOOD_TEXT.replace("version: 1", "version: true"), "field 'version' must be int, got True"),
        (GOOD_TEXT + "stop: [1, 2]\n", "field 'stop' must be tuple[str, ...], got [1, 2]"),
        (GOOD_TEXT + "options: [ways]\n", "field 'options' must be dict"),
        (GOOD_TEXT + "prompt: [" + "xyz, " * 500 + "]\n", "field 'prompt' must be str, got ['xyz', 'xyz', "),
        (GOOD_TEXT + "description: 7\n", "field 'description' must be str, got 7"),
        # missing required fields
        ("version: 1\nkind: vqa\nsource: tiny-shapes\n", "t.yaml: missing required field 'split'"),
        ("", "t.yaml: expected a mapping of fields, got NoneType"),
        ("just a string\n", "expected a mapping of fields, got str"),
        # duplicate keys (PyYAML keeps the last one silently)
        (GOOD_TEXT + "kind: caption\n", "t.yaml:5: YAML error: duplicate key 'kind' (first on line 2)"),
        ("{version: 1, version: 2}\n", "duplicate key 'version'"),
        # values the class checks
        (GOOD_TEXT + "max_new_tokens: 0\n", "t.yaml: invalid max_new_tokens = 0"),
        (GOOD_TEXT + "subsample: -1\n", "invalid subsample = -1"),
        (GOOD_TEXT + "stop: ['']\n", "stop strings must not be empty"),
        (GOOD_TEXT + "prompt: 'Q: {q}'\n", "prompt: unknown placeholder {q}"),
        (GOOD_TEXT + "prompt: 'Q: {question.__class__}'\n", "unknown placeholder {question.__class__}"),
        (GOOD_TEXT + "prompt: 'Q: {0}'\n", "unknown placeholder {0}"),
        (GOOD_TEXT + "shot_prompt: 'Q: {question} {'\n", "shot_prompt: bad template"),
        (GOOD_TEXT + "shot_prompt: 'Q: {question} A: {answer:>{w}}'\n", "shot_prompt: bad template"),
        # unsafe tags are refused, not executed
        (
            GOOD_TEXT + "x: !!python/object/apply:os.getcwd []\n",
            "t.yaml:5: YAML error: could not determine a constructor",
        ),
        (GOOD_TEXT + "x: !!python/name:os.system\n", "YAML error: could not determine a constructor"),
    ],
)
def test_bad_task_yaml_is_one_line_naming_file_line_and_field(tmp_path, text, expected):
    with pytest.raises(HarnessError) as excinfo:
        load_task(tmp_path, text)
    message = one_line(excinfo)
    assert expected in message and len(message) < len(str(tmp_path)) + 200


def test_non_utf8_and_unreadable_task_files(tmp_path):
    with pytest.raises(HarnessError) as excinfo:
        load_task(tmp_path, GOOD_TEXT.encode() + b"description: caf\xe9\n")
    assert "t.yaml:5: not UTF-8 text" in one_line(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        read_yaml(tmp_path / "missing.yaml")
    assert "missing.yaml: cannot read (No such file or directory)" in one_line(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        read_yaml(tmp_path)
    assert "cannot read" in one_line(excinfo)


def test_a_good_task_with_literal_braces_and_a_byte_order_mark(tmp_path):
    task = load_task(tmp_path, "\ufeff" + GOOD_TEXT + "prompt: '{{json}} {question}'\n")
    assert task.prompt.format(question="q") == "{json} q"


def test_anchors_and_merge_keys_work_but_alias_bombs_are_refused(tmp_path):
    merged = parse_yaml("base: &b {ways: 2, episodes: 5}\nopts:\n  <<: *b\n  ways: 5\n", "g.yaml")
    assert merged["opts"] == {"ways": 5, "episodes": 5}
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values
    with pytest.raises(HarnessError) as excinfo:
        parse_yaml("\n".join(levels) + "\n", "bomb.yaml")
    assert f"bomb.yaml: YAML expands to more than {MAX_YAML_VALUES} values" in one_line(excinfo)
    with pytest.raises(HarnessError) as excinfo:
        parse_yaml("[" * 3000 + "]" * 3000, "deep.yaml")
    assert "deep.yaml" in one_line(excinfo)


def test_the_loader_is_pyyaml_safe_loader():
    assert issubclass(StrictLoader, yaml.SafeLoader)
    assert not issubclass(StrictLoader, (yaml.FullLoader, yaml.UnsafeLoader))


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("lr", 0.0, "invalid lr = 0.0"),
        ("lr", math.inf, "invalid lr = inf"),
        ("lr", math.nan, "invalid lr = nan"),
        ("betas", (0.9, 1.0), "invalid betas"),
        ("betas", (0.9,), "field 'betas' must be tuple[float, float]"),
        ("grad_clip", -1.0, "invalid grad_clip"),
        ("warmup_steps", -1, "invalid warmup_steps"),
        ("train_images", "grey", "invalid train_images = 'grey'"),
        ("steps", "120", "field 'steps' must be int, got '120'"),
        ("steps", None, "field 'steps' must be int, got None"),
    ],
)
def test_bad_recipe_values_name_the_field(field, value, expected):
    from harness import registry

    frozen = dataclasses.asdict(registry.RECIPES.get("frozen"))
    with pytest.raises(HarnessError) as excinfo:
        from_mapping(Recipe, {**frozen, field: value}, "r.yaml")
    message = one_line(excinfo)
    assert message.startswith("r.yaml: ") and expected in message


# ----------------------------------------------------------------------------------------------------
# Fuzzing: whatever a YAML file holds, loading it gives a TaskConfig or a HarnessError

FIELDS = [f.name for f in dataclasses.fields(TaskConfig)]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["{question}", "{answer}", "{", "}", "{0}", "{question!r}", "{question:>{x}}", "\n", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(FIELDS) | st.text(max_size=12) | st.integers() | st.none() | st.booleans()


@pytest.mark.slow
@FUZZ
@given(changes=st.dictionaries(keys, values, max_size=6), drop=st.sets(st.sampled_from(FIELDS), max_size=3))
def test_any_mapping_gives_a_task_or_a_harness_error(changes, drop):
    data = {k: v for k, v in {**GOOD, **changes}.items() if k not in drop}
    try:
        task = from_mapping(TaskConfig, data, "fuzz.yaml")
    except HarnessError as exc:
        assert str(exc).startswith("fuzz.yaml") and "\n" not in str(exc)
        return
    assert isinstance(task, TaskConfig)
    task.prompt.format(question="q")  # a task that loads has templates that format
    task.shot_prompt.format(question="q", answer="a")


@FUZZ
@given(data=values)
def test_any_value_at_the_top_gives_a_task_or_a_harness_error(data):
    try:
        from_mapping(TaskConfig, data, "fuzz.yaml")
    except HarnessError:
        pass


yaml_text = st.lists(
    st.sampled_from(list("abkq: \n\t-[]{},'\"&*!|>#%@`?.01\\") + ["version", "kind", "<<", "\u00e9", "\x00", "!!str"]),
    max_size=40,
).map("".join)


@FUZZ
@given(text=yaml_text)
def test_any_yaml_text_gives_data_or_a_harness_error(text):
    try:
        data = parse_yaml(GOOD_TEXT + text, "fuzz.yaml")
    except HarnessError as exc:
        assert str(exc).startswith("fuzz.yaml") and "\n" not in str(exc)
        return
    try:
        from_mapping(TaskConfig, {"name": "t", **data} if isinstance(data, dict) else data, "fuzz.yaml")
    except HarnessError:
        pass


@FUZZ
@given(items=st.lists(st.text(max_size=12) | yaml_text.map(lambda t: "k=" + t), max_size=4))
def test_any_override_gives_values_or_a_harness_error(items):
    try:
        out = parse_overrides(items)
    except HarnessError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(out, dict) and len(out) <= len(items)
