"""Typed configuration: LMs, encoders, recipes and tasks, read from YAML with safe loading.

Every config is a frozen dataclass; ``load_yaml`` rejects unknown keys, missing required fields and
wrong types with one line that names the file and the field, so a typo is never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from harness.errors import HarnessError

T = TypeVar("T")


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
    """One ablation row of the Frozen table: what trains, how, and on what (see DESIGN.md)."""

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

    def __post_init__(self) -> None:
        checks = {
            "lm_init": self.lm_init in ("pretrained", "random"),
            "train_images": self.train_images in ("real", "black"),
            "eval_images": self.eval_images in ("real", "black"),
            "n_prefix": self.n_prefix >= 1,
            "steps": self.steps >= 1,
            "batch_size": self.batch_size >= 1,
            "image_size": self.image_size >= 16,
            "lr": self.lr > 0,
            "save_every": self.save_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise HarnessError(f"recipe '{self.name}': invalid {name} = {getattr(self, name)!r}")


@dataclass(frozen=True)
class TaskConfig:
    """One evaluation task: its data source, prompt templates, generation and scoring settings."""

    name: str
    version: int
    kind: str  # "vqa"
    source: str  # data module key
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
    hub: dict = field(default_factory=dict)  # hub copies: {dataset_id, splits, columns} for the source's load_hub


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """Check ``value`` against a simple annotation; return (ok, value converted to the field's type)."""
    origin = typing.get_origin(hint)
    if hint is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool), float(value) if isinstance(value, (int, float)) else value)
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
            if arg is type(None) and value is None:
                return (True, None)
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
            raise HarnessError(f"{where}: field '{key}' must be {_describe(hints[key])}, got {value!r}")
        values[key] = converted
    return cls(**values)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def read_yaml(path: Path) -> Any:
    """Safe-load a YAML file; syntax errors become one line with the file and line number."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HarnessError(f"{path}{line}: YAML syntax error: {problem}") from None


def load_yaml(cls: type[T], path: Path, **extra: Any) -> T:
    data = read_yaml(path)
    if isinstance(data, dict):
        data = {**extra, **data} if extra else data
    return from_mapping(cls, data, str(path))


def replace_fields(obj: T, overrides: dict[str, Any], where: str) -> T:
    """A copy of a config with some fields changed, type-checked like the file it came from."""
    data = {**dataclasses.asdict(obj), **overrides}
    return from_mapping(type(obj), data, where)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["steps=20", "lr=1e-3"]`` -> ``{"steps": 20, "lr": 0.001}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"--set expects key=value, got '{item}'")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):
            # YAML 1.1 reads "1e-3" as a string; on a command line it is plainly a number.
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out
