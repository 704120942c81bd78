"""A task kind: everything that differs between VQA, captioning and naming, behind one small interface.

The evaluator, the command line, sweeps, checks and the benchmark ask a task's kind (``kind_of(task)``)
and never compare its name: a new kind is one module that subclasses ``TaskKind`` and registers an
instance with ``KINDS.add("name", MyKind())`` (or, from another package, through the ``frozen_harness.kinds``
entry-point group). The defaults here are those of a question-answering kind; a kind overrides what it changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import TaskConfig, replace_fields
from harness.errors import HarnessError
from harness.plugins import Plugins

if TYPE_CHECKING:
    from harness.data.types import Dataset, Row
    from harness.prompt import Prompt


@dataclass(frozen=True)
class CellSetting:
    """A task option that makes another table cell (naming's ``ways``): recorded with every run of its kind (the
    record's ``cell_settings``), named in the task's label, never averaged with runs of another value, and selectable
    by name in a findings file (``ways: 5``)."""

    name: str  # the option's name, and its key in ``cell_settings``
    type: type  # of one value (int, bool, str): what a findings file may select
    text: Callable[[Any], str]  # what a value adds to the task's label ("" for nothing): " 5-way"
    side: Callable[[Any], str] | None = None  # a findings side that differs in it; default: ``text`` stripped
    # A setting added after runs were recorded without it: its value in those runs. A run at this value records
    # nothing for it, so its record (and cell) is the same as before the setting existed.
    default: Any = None

    def side_text(self, value: Any) -> str:
        return self.side(value) if self.side else self.text(value).strip()


class TaskKind:
    """The default behaviour of a kind whose queries are rows of a split with few-shot support drawn
    from another split; see ``harness.kinds.vqa``, ``caption`` and ``naming`` for the three built in."""

    name: ClassVar[str] = ""
    metric: ClassVar[str] = ""  # the registered metric a task of this kind is scored with by default
    # Options a task of this kind takes beyond TaskConfig's fields (``options:`` in its YAML,
    # ``--task-set key=value``), with their defaults.
    options: ClassVar[dict[str, Any]] = {}
    # True when a query brings its own solved examples (naming episodes): there is no support pool,
    # and a cell's shot count means something else (``as_run``).
    own_support: ClassVar[bool] = False
    # True when the kind keeps only the rows of a task's ``question_types`` (vqa); other kinds refuse the field.
    takes_question_types: ClassVar[bool] = False
    # The options beyond the shot count that make another table cell, in the order the label names them. Adding one
    # here is all it takes for the records, the results database, the tables and the findings to carry and label it.
    cell_settings: ClassVar[tuple[CellSetting, ...]] = ()
    # The option a cell's shot count sets, when it is one (naming: inner_shots): a cell field, not a task variant.
    shots_option: ClassVar[str | None] = None
    # The no-model baselines a few-shot cell of this kind is scored with (``harness.evaluation.baselines``).
    baselines: ClassVar[tuple[str, ...]] = ("copy_last", "majority")

    # ---- what a shot count means ------------------------------------------------------------------
    def default_shots(self, task: TaskConfig) -> int:
        return 0

    def check_shots(self, task: TaskConfig, shots: Sequence[int], flag: str) -> None:
        """Shot counts asked for on the command line or in a file, refused with one line before anything runs."""
        if not shots or min(shots) < 0:
            raise HarnessError(f"{flag} expects whole numbers >= 0, got {', '.join(map(str, shots)) or 'nothing'}")

    def grid_shots(self, shots: Sequence[int]) -> list[int]:
        """A sweep's shot counts as distinct cells of this kind."""
        return list(shots)

    def as_run(self, task: TaskConfig, shots: int) -> tuple[TaskConfig, int]:
        """(the task as run, support examples per query) for a cell of ``shots`` shots."""
        return task, shots

    def check_options(self, task: TaskConfig) -> dict[str, Any]:
        """The task's options with defaults filled in; an unknown option is one line."""
        unknown = sorted(set(task.options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise HarnessError(f"task {task.name}: unknown {self.name} option '{unknown[0]}' (known: {known})")
        return {**self.options, **task.options}

    # ---- rows, support, prompts -----------------------------------------------------------------
    def rows(self, task: TaskConfig, dataset: Dataset, seed: int) -> list[Row]:
        """Every query of the task's split, before ``subsample``; ``seed`` is the evaluation seed."""
        return dataset.rows(task.split)

    def support_pool(self, task: TaskConfig, dataset: Dataset) -> list[Row]:
        return dataset.rows(task.support_split)

    def prompt(self, task: TaskConfig, dataset: Dataset, row: Row, support: Sequence[Row]) -> Prompt:
        """``[img] shot_prompt`` for each support example, then ``[img] prompt`` for the query."""
        from harness.prompt import Image

        prompt: Prompt = []
        for shot in support:
            prompt.append(Image(shot.image, dataset.image(shot.image)))
            prompt.append(task.shot_prompt.format(question=shot.question, answer=reference_answer(shot)))
        prompt.append(Image(row.image, dataset.image(row.image)))
        prompt.append(task.prompt.format(question=row.question))
        return prompt

    def stand_ins(self, task: TaskConfig, dataset: Dataset, seed: int) -> dict[str, str]:
        """For the shuffled-image control: every image a query or a support example can show, mapped to another
        image of its split by a seeded derangement over the whole split (not the --limit subset), so questions
        that share an image never get it back."""
        from harness.conditions import derangement

        out: dict[str, str] = {}
        for split, rows in ((task.split, self.rows(task, dataset, seed)), (task.support_split, None)):
            if rows is None:
                if task.support_split == task.split:
                    continue
                rows = self.support_pool(task, dataset)
            out.update(derangement([r.image for r in rows], f"shuffled|{task.name}|{split}|{seed}"))
        return out

    def too_long(self, task: TaskConfig, shots: int, fits: int | None) -> str:
        """What to do when a prompt does not fit the LM's context; ``fits``: most support examples that would."""
        if fits is None:
            return "not even a 0-shot prompt fits"
        return f"at most {fits} shots fit (--shots {fits})"

    # ---- answers and scores ---------------------------------------------------------------------
    def answer_mode(self, task: TaskConfig) -> str:
        """ "generate" (greedy text) or "rank" (the most likely of the query's candidate answers)."""
        return "generate"

    def shot_answer(self, row: Row) -> str:
        """The answer a solved example of ``row`` shows in a prompt (``prompt``): its most common reference."""
        return reference_answer(row)

    def shot_answers(self, row: Row, support: Sequence[Row]) -> list[str]:
        """The answers the prompt of query ``row`` shows, in prompt order: what the no-model baselines copy."""
        return [self.shot_answer(shot) for shot in support]

    def candidates(self, row: Row) -> list[str]:
        """The answers ranked for a query in "rank" mode."""
        raise HarnessError(f"{self.name} tasks do not rank answers")

    def summarize(self, task: TaskConfig, scores: Sequence[float], rows: Sequence[Row]) -> dict[str, Any]:
        """The headline figure (key "score") and its breakdowns."""
        from harness.metrics.vqa import official_round

        return {"score": official_round(100 * sum(scores) / len(scores)), "breakdown": {}}

    def record(self, task: TaskConfig, dataset: Dataset, shots: int) -> dict[str, Any]:
        """What a run record adds to say what ran: the shot count as this kind means it, the kind, and the cell
        settings of the run (``settings``), which change what a score means (shown with the task's name)."""
        return {"shots": shots, "kind": self.name, "cell_settings": self.settings(task, dataset)}

    def settings(self, task: TaskConfig, dataset: Dataset) -> dict[str, Any]:
        """The run's value of each of the kind's ``cell_settings``."""
        options = self.check_options(task)
        return {s.name: options[s.name] for s in self.cell_settings
                if s.default is None or options[s.name] != s.default}  # fmt: skip

    def cell_options(self) -> tuple[str, ...]:
        """The task options that are cell fields of their own (the cell settings and the shot count's option):
        runs that differ only in them are one task variant."""
        return tuple(s.name for s in self.cell_settings) + ((self.shots_option,) if self.shots_option else ())

    def label(self, task: str, record: Mapping[str, Any]) -> str:
        """The task's name in tables, with the text of each cell setting ``record`` holds: 'emoji-open 5-way'."""
        settings = record.get("cell_settings") or {}
        return task + "".join(s.text(settings[s.name]) for s in self.cell_settings if settings.get(s.name) is not None)


def reference_answer(row: Row) -> str:
    """The answer written into a solved support example: the most common human answer."""
    return Counter(row.answers).most_common(1)[0][0]


def with_options(task: TaskConfig, options: dict[str, Any], where: str) -> TaskConfig:
    return replace_fields(task, {"options": {**task.options, **options}}, where)


# Every module of harness.kinds registers its kind when imported; other packages add theirs through the
# entry-point group (the entry point names a TaskKind instance).
KINDS: Plugins[TaskKind] = Plugins("task kind", "frozen_harness.kinds", "harness.kinds")


def kind_of(task: TaskConfig) -> TaskKind:
    """The kind of ``task``, from the registry (one-line error for an unknown kind)."""
    return KINDS.get(task.kind)


def cell_label(kind: str, task: str, settings: Mapping[str, Any]) -> str:
    """A run's task label from its kind's name and cell settings, as the kind labels it; a kind that is not
    registered (any more) gets each setting as ' name=value'."""
    known = KINDS.items.get(kind)
    if known is not None:
        return known.label(task, {"cell_settings": settings})
    return task + "".join(f" {k}={v}" for k, v in sorted(settings.items()) if v is not None)


def cell_settings() -> dict[str, CellSetting]:
    """Every registered kind's cell settings by name (the first kind to declare a name wins)."""
    out: dict[str, CellSetting] = {}
    for known in KINDS.items.values():
        for setting in known.cell_settings:
            out.setdefault(setting.name, setting)
    return out


def ordered_settings(kind: str, settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A run's cell settings as (name, value) pairs in its kind's order (others after, by name): a cell key."""
    known = KINDS.items.get(kind)
    declared = [s.name for s in known.cell_settings] if known is not None else []
    names = [n for n in declared if n in settings] + sorted(set(settings) - set(declared))
    return tuple((n, settings[n]) for n in names)
