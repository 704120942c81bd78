"""The run record: what one evaluation measured, as written to its ``metrics.json`` and indexed in the
results database. A typed dataclass, read back from records of every earlier version (fields added since
take their defaults; ``upgrade`` converts what changed shape), and written in the same flat JSON shape as always.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Written only when they differ from their default, so records keep the shape earlier versions wrote.
_OPTIONAL = {"per_question_type": None, "skip_bad_samples": False, "skipped": 0, "skipped_examples": [],
             "kind": "", "cell_settings": {}, "events": [], "task_label": "",
             "empty_answers": 0, "model_family": "", "train_seed": None, "precision": "",
             "precision_reason": "", "split": "", "baselines": {}, "caption_text": ""}  # fmt: skip


@dataclass
class RunRecord:
    task: str  # the task's registry name
    model: str
    model_fingerprint: str
    shots: int  # support examples per query; a naming run's inner shots
    seed: int
    images: str  # real | black | shuffled | caption
    limit: int  # 0: every query; N: the first N only (partial)
    run_dir: str
    partial: bool
    metric: str  # the metric's title, e.g. "VQA accuracy"
    score: float  # the headline figure, in points, rounded as the official scripts round
    n: int  # queries scored
    ci95: list[float]  # bootstrap 95% interval of the score over queries, in points
    breakdown: dict[str, float] = field(default_factory=dict)  # per answer type (VQA)
    per_question_type: dict[str, float] | None = None
    corpus: dict[str, float] = field(default_factory=dict)  # corpus figures (Bleu_1 .. CIDEr), written flat
    skip_bad_samples: bool = False
    skipped: int = 0  # queries skipped for an unreadable image (--skip-bad-samples)
    skipped_examples: list[str] = field(default_factory=list)
    kind: str = ""  # the task's kind (vqa, caption, naming)
    # The kind's cell settings as run (naming: ways, repeats, induction, answer): with the task, shots, model and
    # images, what makes a table cell; the kind names them in the task label (``harness.kinds.base.CellSetting``).
    cell_settings: dict[str, Any] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)  # what happened on the way (out of memory)
    task_label: str = ""  # the task's name in tables, with the setting that makes it another task
    empty_answers: int = 0  # queries whose answer was empty text
    model_family: str = ""  # the model's fingerprint but for its training seed (tables pool training seeds)
    train_seed: int | None = None  # the recipe's seed of a model trained by the harness
    precision: str = ""  # what the model computed in (fp32, bf16), where it says
    precision_reason: str = ""  # why (harness.precision)
    split: str = ""  # the task split evaluated: "dev", or "" for test (records before splits were test)
    baselines: dict = field(default_factory=dict)  # no-model baselines of a few-shot cell, in points: {"copy_last": ..}
    caption_text: str = ""  # --images caption: "prose" (captions and texts joined as prose); "" before that

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "corpus"}
        for key, default in _OPTIONAL.items():
            if out[key] == default:
                del out[key]
        return {**out, **self.corpus}

    @classmethod
    def from_json(cls, data: dict[str, Any], config: Callable[[], dict] | None = None) -> RunRecord:
        """A record of any version (``upgrade``; ``config`` reads the run's config.json, for the oldest): keys it
        lacks take defaults; numbers this class has no field for are its corpus figures."""
        data = upgrade(data, config)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {"limit": 0, "partial": False, "run_dir": "",
                  **{k: v for k, v in data.items() if k in known and k != "corpus"}}  # fmt: skip
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and f.name != "corpus"]  # fmt: skip
        if missing:
            raise ValueError(f"not a run record: no '{missing[0]}'")
        corpus = {k: v for k, v in data.items() if k not in known and isinstance(v, (int, float))
                  and not isinstance(v, bool)}  # fmt: skip
        return cls(**values, corpus=corpus)

    @property
    def label(self) -> str:
        return self.task_label or self.task

    @property
    def all_empty(self) -> bool:
        """Every answer was empty text: a model that says nothing, reported as such, not as a score of 0."""
        return self.n > 0 and self.empty_answers >= self.n


# Records before ``kind`` and ``cell_settings`` held naming's settings as fields of their own.
_NAMING_FIELDS = ("ways", "repeats", "induction", "answer")


def upgrade(data: dict[str, Any], config: Callable[[], dict] | None = None) -> dict[str, Any]:
    """A record of an earlier version in today's shape: the one place that knows the old shapes. A record without
    ``kind`` gets its task's kind (from its config.json, or the task registry) and ``cell_settings``: a naming run's
    ``ways``, ``repeats``, ``induction`` and ``answer`` fields, or, for the oldest, which wrote none of them, the
    options of its config.json (generated episodes only). Records are converted as they are read, never rewritten;
    ``harness score`` writes a run's record again in today's shape."""
    if "kind" in data:
        return data
    out = {k: v for k, v in data.items() if k not in _NAMING_FIELDS}
    old = {k: data[k] for k in _NAMING_FIELDS if k in data}
    task = (config() if config else {}).get("task_config") or {}
    naming = bool(old) or data.get("metric") == "naming accuracy"
    out["kind"] = task.get("kind") or ("naming" if naming else _registered_kind(data.get("task")))
    if not naming:
        return out
    settings = {k: old[k] for k in ("ways", "repeats", "induction") if k in old}
    options = task.get("options") or {}
    if len(settings) < 3:
        settings = {}
        if task.get("source") != "frozen-episodes" and "ways" in options:
            settings = {"ways": options["ways"], "repeats": options.get("repeats", 1),
                        "induction": bool(options.get("induction", False))}  # fmt: skip
    out["cell_settings"] = {**settings, "answer": old.get("answer") or "generate"}
    return out


def _registered_kind(task: Any) -> str:
    from harness import registry
    from harness.errors import HarnessError

    try:
        return registry.TASKS.get(str(task)).kind
    except HarnessError:
        return ""
