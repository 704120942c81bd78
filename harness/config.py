"""Typed configuration: LMs, encoders, recipes and tasks, read from YAML with safe loading.

Every config is a frozen dataclass; ``load_yaml`` rejects unknown keys, missing required fields and
wrong types with one line that names the file and the field, so a typo is never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from harness.errors import HarnessError
from harness.prompt import check_template

T = TypeVar("T")
GROUPS = ("encoder", "map", "lm")  # the parameter groups of a visual-prefix model, each at its own ``lr_<group>``


@dataclass(frozen=True)
class LMSpec:
    """A causal LM, from the hub (``hub_id`` at ``revision``) or from a GGUF file a package ships."""

    key: str
    source: str  # "hub" | "gguf"
    hub_id: str = ""
    revision: str = "main"
    locate: str = ""  # gguf: how lms.py finds the file ("module:NAME", "assemble:NAME", "parts:NAME{1..6}")
    gguf_file: str = ""
    install: str = ""
    add_bos: bool = False
    suppress_tokens: tuple[str, ...] = ()
    params: str = ""
    license: str = ""
    note: str = ""


@dataclass(frozen=True)
class EncoderSpec:
    """A timm image backbone and where its pretrained weights come from."""

    key: str
    timm_name: str
    weights: str  # "timm-hub" | "efficientnet-lite0-package"
    pretrained_tag: str = ""
    install: str = ""
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    """One ablation row of the Frozen table: what trains, how, and on what.

    Built through ``from_mapping`` (recipe files, ``--set``), whose errors name the file or flag."""

    name: str
    description: str
    train_lm: bool
    lm_init: str  # "pretrained" | "random"
    train_encoder: bool
    lr: float
    train_images: str  # "real" | "black"
    eval_images: str  # "real" | "black": the default at evaluation
    encoder: str
    train_data: str
    steps: int
    batch_size: int
    image_size: int
    n_prefix: int
    seed: int
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int = 0
    save_every: int = 50
    # Fields added later (left out of the model fingerprint at their defaults: harness.models.spec). Each training
    # sequence packs `pairs` images with their texts, "[img] a red circle.<sep>[img] a blue square.<eos>";
    # batch_size counts images. See docs/concepts.md#training-data.
    pairs: int = 1
    loss_on: str = "all"  # "all": every text of a sequence (and its separator) is a target; "last": the last only
    pair_separator: str = "\n"  # the text after every pair of a sequence but the last
    caption_style: str = "plain"  # "plain" | "varied": easy-vqa captions reworded, drawn per use
    train_mix: tuple[str, ...] = ()  # other caption sources beside train_data, "source:share" (of sequences)
    aux_embed: float = 0.0  # weight of the loss pulling each prefix vector toward its caption's word embeddings
    lr_schedule: str = "constant"  # "constant" | "cosine" (to 0 at the last step, after the warmup)
    train_text: str = "captions"  # "captions" | "vqa": train_data's training questions, loss on the answers
    # The share of sequences (of 2 pairs or more) whose last image shows again what an earlier pair showed:
    # another image with that pair's caption (an emoji concept by its other vendor, an easy-vqa shape of the
    # same colour), so the caption can be copied from the context.
    pair_repeat: float = 0.0
    lr_encoder: float | None = None  # each trained part's learning rate (None: lr), scaled alike by the schedule
    lr_map: float | None = None
    lr_lm: float | None = None
    question_types: tuple[str, ...] = ()  # train_text: vqa: only the training questions of these types; (): all

    def mix(self) -> list[tuple[str, float]]:
        """``train_mix`` as (source, share) pairs."""
        return [(name, float(share)) for name, _, share in (item.rpartition(":") for item in self.train_mix)]

    def group_lr(self, group: str) -> float:
        """The learning rate of a parameter group (``GROUPS``): its own field, else ``lr``."""
        return self.lr if getattr(self, f"lr_{group}") is None else getattr(self, f"lr_{group}")

    def __post_init__(self) -> None:
        choices = {"loss_on": ("all", "last"), "caption_style": ("plain", "varied"),
                   "lr_schedule": ("constant", "cosine"), "train_text": ("captions", "vqa")}  # fmt: skip
        why = {"pairs": f"1 or more, and batch_size {self.batch_size} a multiple of it", "aux_embed": "0 or more",
               "pair_repeat": "from 0 to 1",
               "train_mix": "source:share items, each share in (0, 1], together at most 1",
               "lr": "more than 0", **{f"lr_{g}": "more than 0 where the part trains, or unset for lr" for g in GROUPS},
               "question_types": "distinct type names, for train_text: vqa",
               **{k: " or ".join(v) for k, v in choices.items()}}  # fmt: skip
        mix_ok = all(re.fullmatch(r"[\w.-]+:(0?\.\d+|[01](\.\d*)?)", m) for m in self.train_mix)
        checks = {
            "lm_init": self.lm_init in ("pretrained", "random"),
            "train_images": self.train_images in ("real", "black"),
            "eval_images": self.eval_images in ("real", "black"),
            "n_prefix": self.n_prefix >= 1,
            "steps": self.steps >= 1,
            "batch_size": self.batch_size >= 1,
            "image_size": self.image_size >= 16,
            "lr": math.isfinite(self.lr) and self.lr > 0,
            "save_every": self.save_every >= 1,
            "betas": all(math.isfinite(b) and 0 <= b < 1 for b in self.betas),
            "weight_decay": math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "grad_clip": math.isfinite(self.grad_clip) and self.grad_clip >= 0,
            "warmup_steps": self.warmup_steps >= 0,
            "seed": self.seed >= 0,
            "pairs": self.pairs >= 1 and self.batch_size % self.pairs == 0,
            "train_mix": mix_ok and all(s > 0 for _, s in self.mix()) and sum(s for _, s in self.mix()) <= 1 + 1e-9,
            "aux_embed": math.isfinite(self.aux_embed) and self.aux_embed >= 0,
            "pair_repeat": math.isfinite(self.pair_repeat) and 0 <= self.pair_repeat <= 1,
            **{
                f"lr_{g}": (v := getattr(self, f"lr_{g}")) is None or (math.isfinite(v) and v > 0 and on)
                for g, on in zip(GROUPS, (self.train_encoder, True, self.train_lm))
            },
            "question_types": all(self.question_types)
            and len(set(self.question_types)) == len(self.question_types)
            and (not self.question_types or self.train_text == "vqa"),
            **{k: getattr(self, k) in v for k, v in choices.items()},
        }
        for name, ok in checks.items():
            if not ok:
                reason = f" ({why[name]})" if name in why else ""
                raise HarnessError(f"invalid {name} = {getattr(self, name)!r}{reason}")


@dataclass(frozen=True)
class TaskConfig:
    """One evaluation task: its data source, prompt templates, generation and scoring settings."""

    name: str
    version: int
    kind: str  # a registered task kind: "vqa", "caption", "naming" (harness.kinds)
    source: str  # a registered data source (harness.data.sources)
    split: str
    description: str = ""
    support_split: str = "train"
    subsample: int = 0  # 0: every row of the split; N: a fixed seeded subset of N rows
    prompt: str = "Question: {question} Answer:"
    shot_prompt: str = "Question: {question} Answer: {answer}"
    max_new_tokens: int = 8
    stop: tuple[str, ...] = ("\n",)
    normalize_prediction: bool = False
    options: dict = field(default_factory=dict)
    question_types: tuple[str, ...] = ()  # vqa: only queries and support of these question types ("color")
    hub: dict = field(default_factory=dict)  # hub copies: {dataset_id, splits, columns} for the source's load_hub
    metric: str = ""  # a registered metric (harness.metrics.base); "": the kind's own

    def __post_init__(self) -> None:
        for name, ok in {"max_new_tokens": self.max_new_tokens >= 1, "subsample": self.subsample >= 0}.items():
            if not ok:
                raise HarnessError(f"invalid {name} = {getattr(self, name)!r}")
        if any(not s for s in self.stop):
            raise HarnessError(f"stop strings must not be empty, got {list(self.stop)!r}")
        check_template(self.prompt, ("question",), "prompt")
        check_template(self.shot_prompt, ("question", "answer"), "shot_prompt")


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """Check ``value`` against a simple annotation; return (ok, value converted to the field's type)."""
    origin = typing.get_origin(hint)
    if hint is float:
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool),
            float(value) if isinstance(value, (int, float)) else value,
        )
    if hint in (int, str, bool):
        return (type(value) is hint, value)
    if hint is dict or origin is dict:
        return (isinstance(value, dict), value)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return (False, value)
        item = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            converted = [_type_ok(v, item) for v in value]
        elif len(args) == len(value):
            converted = [_type_ok(v, a) for v, a in zip(value, args)]
        else:
            return (False, value)
        return (all(ok for ok, _ in converted), tuple(v for _, v in converted))
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None):
                if value is None:
                    return (True, None)
                continue
            ok, converted = _type_ok(value, arg)
            if ok:
                return (True, converted)
        return (False, value)
    raise TypeError(f"unsupported annotation {hint}")


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build the dataclass ``cls`` from a mapping, with one-line errors naming ``where`` and the field."""
    if not isinstance(data, dict):
        raise HarnessError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise HarnessError(f"{where}: unknown field '{key}'{hint}")
    missing = [
        name
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise HarnessError(f"{where}: missing required field '{missing[0]}'")
    values = {}
    for key, value in data.items():
        ok, converted = _type_ok(value, hints[key])
        if not ok:
            raise HarnessError(f"{where}: field '{key}' must be {_describe(hints[key])}, got {_short(value)}")
        values[key] = converted
    try:
        return cls(**values)
    except HarnessError as exc:  # a value checked by the class itself (a range, a template)
        raise HarnessError(f"{where}: {exc}") from None


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is not None:  # tuple[str, ...], dict[str, int], int | None
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: no Python objects, no code), refusing duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *base" merges; its keys may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a mapping key must be a plain value, got {type(key).__name__}", key_node.start_mark
                ) from None
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_short(key)} (first on line {first + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


# A document whose aliases expand to more values than this is refused ("billion laughs").
MAX_YAML_VALUES = 100_000


def _expanded_size(obj: Any, memo: dict[int, int]) -> int:
    """How many values ``obj`` holds once every alias is expanded (shared lists/dicts counted per use)."""
    if not isinstance(obj, (list, dict)):
        return 1
    if id(obj) not in memo:
        memo[id(obj)] = MAX_YAML_VALUES + 1  # a self-referencing structure is infinitely large
        items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        total = 1
        for item in items:
            total += _expanded_size(item, memo)
            if total > MAX_YAML_VALUES:
                break
        memo[id(obj)] = total
    return memo[id(obj)]


def _load_yaml(text: str | bytes) -> Any:
    """Safe-load YAML text with ``StrictLoader``; problems raise ``_YAMLProblem`` (line, text)."""
    loader = None
    try:
        loader = StrictLoader(text)
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(text, str):
            line = text[: exc.position].count("\n") + 1
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise _YAMLProblem(line, f"{kind}: {problem}") from None
    except RecursionError:
        raise _YAMLProblem(None, "YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    try:
        too_big = _expanded_size(data, {}) > MAX_YAML_VALUES
    except RecursionError:
        too_big = True
    if too_big:
        raise _YAMLProblem(None, f"YAML expands to more than {MAX_YAML_VALUES} values (through aliases?)")
    return data


class _YAMLProblem(Exception):
    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line, self.problem = line, problem


def parse_yaml(text: str | bytes, where: str) -> Any:
    """Safe-load YAML text; every problem becomes one line with ``where`` and the line number."""
    try:
        return _load_yaml(text)
    except _YAMLProblem as exc:
        line = f":{exc.line}" if exc.line is not None else ""
        raise HarnessError(f"{where}{line}: {exc.problem}") from None


def read_yaml(path: Path) -> Any:
    """Safe-load a YAML file; syntax errors become one line with the file and line number."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise HarnessError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, str(path))


def load_yaml(cls: type[T], path: Path, **extra: Any) -> T:
    data = read_yaml(path)
    if isinstance(data, dict):
        data = {**extra, **data} if extra else data
    return from_mapping(cls, data, str(path))


def replace_fields(obj: T, overrides: dict[str, Any], where: str) -> T:
    """A copy of a config with some fields changed, type-checked like the file it came from."""
    data = {**dataclasses.asdict(obj), **overrides}
    return from_mapping(type(obj), data, where)


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["steps=20", "lr=1e-3"]`` -> ``{"steps": 20, "lr": 0.001}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"--set expects key=value, got '{item}'")
        try:
            parsed = _load_yaml(value)
        except _YAMLProblem as exc:
            raise HarnessError(f"--set {key.strip()}: cannot read the value {value!r:.60} ({exc.problem})") from None
        if isinstance(parsed, str) and _EXPONENT_NUMBER.fullmatch(parsed.strip()):
            # YAML 1.1 reads "1e-3" as a string; on a command line it is plainly a number.
            parsed = float(parsed)
        out[key.strip()] = parsed
    return out
