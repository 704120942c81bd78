"""Frozen's open-ended naming protocol (Tsimpoukelli et al. 2021, section 4.3): episodes and texts.

An episode has ``ways`` classes, each given a name: a nonsense word for open-ended naming (the
model must bind a new word to a new visual category from the support alone), or the class's real
name for real-name naming. The support shows, for each class, ``inner_shots`` images, each followed
by ``"This is a {name}."``; classes are interleaved (for every shot position, all classes in a
seeded order), and the whole block is repeated ``repeats`` times. Optional task induction text
("Answer with dax or blicket.") comes first. The query is one more image of one of the classes,
never one of the support images, followed by ``QUERY_TEXT``; the model is right when its text, up
to the first period or newline, is the class's name (see ``harness.metrics.naming``). The identical-image
control (option ``query: support``) makes the query one of its own class's support images instead: the
easiest binding there is, which a model that reads its prefix at all should pass.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.data.dev import DEV
from harness.data.naming_text import (  # noqa: F401 - also here
    NONSENSE_NAMES,
    QUERY_TEXT,
    display_name,
    induction_text,
    support_text,
)
from harness.data.types import Row
from harness.errors import HarnessError
from harness.kinds.base import KINDS, CellSetting, TaskKind, with_options
from harness.metrics.base import METRICS, Metric

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.data.types import Dataset
    from harness.prompt import Prompt


def _check_counts(ways: int, inner_shots: int, repeats: int, n_episodes: int, open_ended: bool, task: str) -> None:
    for label, value, least in (("ways", ways, 1), ("inner_shots", inner_shots, 1), ("repeats", repeats, 1),
                                ("episodes", n_episodes, 0)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise HarnessError(f"naming task {task}: {label} must be a whole number >= {least}, got {value!r}")
    if open_ended and ways > len(NONSENSE_NAMES):
        raise HarnessError(
            f"naming task {task}: {ways}-way open-ended episodes need {ways} nonsense names; "
            f"there are {len(NONSENSE_NAMES)} ({', '.join(NONSENSE_NAMES)})"
        )


def build_episodes(
    classes: Mapping[str, Sequence[str]],
    *,
    ways: int,
    inner_shots: int,
    repeats: int,
    induction: bool,
    open_ended: bool,
    n_episodes: int,
    seed: int,
    task: str,
    query_pool: Mapping[str, Sequence[str]] | None = None,
    query_from_support: bool = False,
) -> list[Row]:
    """``n_episodes`` naming episodes over ``classes`` (class name -> image keys), one Row each.

    Deterministic in its arguments alone: classes and their images are sorted first (so neither
    dict nor list order matters) and episode ``i`` draws everything from
    ``random.Random(f"{task}|{seed}|{i}")``. Each episode: ``ways`` distinct classes; their names
    (nonsense names shuffled per episode, or the real names); ``inner_shots`` distinct support
    images per class; the query class, chosen among the episode's classes, and its query image,
    taken from ``query_pool`` when given (e.g. another emoji vendor's drawings) and never one of the
    episode's support images; with ``query_from_support``, one of the query class's own support images
    (the identical-image control), the episode otherwise the same as without it (classes, names, support, order).
    """
    _check_counts(ways, inner_shots, repeats, n_episodes, open_ended, task)
    pool = {name: sorted(set(keys)) for name, keys in classes.items()}
    names = sorted(pool)
    if len(names) < ways:
        raise HarnessError(f"naming task {task}: {ways}-way episodes need {ways} classes; there are {len(names)}")
    if not open_ended:
        seen: dict[str, str] = {}
        for name in names:
            other = seen.setdefault(display_name(name).lower(), name)
            if other != name:
                raise HarnessError(f"naming task {task}: classes '{other}' and '{name}' have the same real name")
    queries = None if query_pool is None else {name: sorted(set(keys)) for name, keys in query_pool.items()}
    query_elsewhere = queries is not None or query_from_support  # no query image is taken from the pool
    need = inner_shots if query_elsewhere else inner_shots + 1
    for name in names:
        if len(pool[name]) < need:
            what = f"{inner_shots} support image(s)" + ("" if query_elsewhere else " and a query image")
            raise HarnessError(
                f"naming task {task}: class '{name}' has {len(pool[name])} image(s); "
                f"{inner_shots}-shot episodes need {what}"
            )
        if queries is not None and not queries.get(name) and not query_from_support:
            raise HarnessError(f"naming task {task}: the query pool has no images of class '{name}'")

    episodes = []
    for index in range(n_episodes):
        rng = random.Random(f"{task}|{seed}|{index}")
        chosen = rng.sample(names, ways)
        if open_ended:
            label = dict(zip(chosen, rng.sample(NONSENSE_NAMES, ways)))
        else:
            label = {c: display_name(c) for c in chosen}
        shots = {c: rng.sample(pool[c], inner_shots) for c in chosen}
        target = rng.choice(chosen)
        used = {key for keys in shots.values() for key in keys}
        candidates = [key for key in (pool if queries is None else queries).get(target, ()) if key not in used]
        if query_from_support:
            if candidates:  # drawn as the default episode draws it, so that the rest of the episode is the same
                rng.choice(candidates)
            query = random.Random(f"{task}|{seed}|{index}|support-query").choice(sorted(shots[target]))
        elif not candidates:
            raise HarnessError(
                f"naming task {task}: episode {index}: every query image of class '{target}' is a support image"
            )
        else:
            query = rng.choice(candidates)
        block: list[tuple[str, str]] = []
        for position in range(inner_shots):
            for c in rng.sample(chosen, ways):  # the classes in a seeded order at every shot position
                block.append((shots[c][position], label[c]))
        order = list(dict.fromkeys(name for _, name in block))  # names in order of first appearance
        episodes.append(
            Row(
                id=f"{task}-{index}",
                image=query,
                question="",
                answers=(label[target],),
                answer_type="naming",
                question_type=f"{ways}-way",
                support=tuple(block * repeats),
                induction=induction_text(order) if induction else "",
            )
        )
    return episodes


# Where the answer ends: a period or any line break (\n, \r, \v, \f, \x1c-\x1e, \x85, U+2028/9).
_END = re.compile(r"[.\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def extract_name(generated: str) -> str:
    """The answer part of a generation: up to the first period or line break, stripped, lower-cased."""
    if not isinstance(generated, str):
        return ""
    return _END.split(generated, maxsplit=1)[0].strip().lower()


def naming_accuracy(generated: str, name: str) -> float:
    """Frozen's naming score: 1.0 when the generated text, up to the first period or line break (or the end,
    where generation stopped at EOS), stripped and lower-cased, is exactly ``name`` (likewise stripped and
    lower-cased), else 0.0. " dax." and "Dax\\n..." are right for "dax"; "dax is" and "blicket" are not."""
    if not isinstance(name, str):
        return 0.0
    return 1.0 if extract_name(generated) == name.strip().lower() else 0.0


# The options of a naming task (``options:`` in its YAML, ``--task-set``), with their defaults. answer:
# "generate" (Frozen's protocol: the generated text must be the name) or "rank" (the episode's name with
# the highest log-likelihood after the query is the answer: a closed-set reading). support_vendors and
# query_vendor draw support and query images from different groups of the class images (emoji vendors). query:
# "new" (an image that is not in the support) or "support" (one of the class's own support images: the identical-image
# control, the easiest binding there is).
OPTIONS: dict[str, Any] = {"ways": 2, "inner_shots": 1, "repeats": 1, "induction": False, "open_ended": True,
                           "episodes": 200, "support_vendors": None, "query_vendor": None, "answer": "generate",
                           "query": "new"}  # fmt: skip
ANSWER_MODES = ("generate", "rank")
QUERY_MODES = ("new", "support")
RANKED = " (ranked)"  # after the task label of a naming run answered by ranking the episode's names
# The options that change what a score means, beyond the inner shots (the cell's shot count): recorded with it, and
# named after the task's name in its label ('emoji-open 5-way x2 repeats +induction (ranked)'), so that 2-way and
# 5-way numbers are never averaged together.
CELL_SETTINGS = (
    CellSetting("ways", int, lambda ways: f" {ways}-way"),
    CellSetting("repeats", int, lambda repeats: f" x{repeats} repeats" if repeats > 1 else ""),
    CellSetting(
        "induction", bool, lambda on: " +induction" if on else "", lambda on: "+induction" if on else "no induction"
    ),
    CellSetting("answer", str, lambda mode: RANKED if mode == "rank" else ""),
    CellSetting(
        "query",
        str,
        lambda mode: " identical-image" if mode == "support" else "",
        lambda mode: "identical image" if mode == "support" else "new query image",
        default="new",
    ),
)


class Naming(TaskKind):
    """Frozen's naming protocol. A query is an episode that brings its own support, so a cell's shot
    count is the episode's ``inner_shots`` (at least 1), and no support pool is drawn from."""

    name = "naming"
    metric = "naming_accuracy"
    options = OPTIONS
    own_support = True
    cell_settings = CELL_SETTINGS
    shots_option = "inner_shots"
    baselines = ("copy_last",)  # every name is shown equally often: the majority of the shots is the last one

    def default_shots(self, task: TaskConfig) -> int:
        return int(task.options.get("inner_shots", OPTIONS["inner_shots"]))

    def check_shots(self, task: TaskConfig, shots: Sequence[int], flag: str) -> None:
        super().check_shots(task, shots, flag)
        if min(shots) < 1:
            raise HarnessError(f"task {task.name}: naming needs at least 1 inner shot, got {flag} {min(shots)}")

    def grid_shots(self, shots: Sequence[int]) -> list[int]:
        return sorted({max(s, 1) for s in shots})  # 0 and 1 inner shots are the same cell

    def as_run(self, task: TaskConfig, shots: int) -> tuple[TaskConfig, int]:
        return with_options(task, {"inner_shots": shots}, f"task {task.name}"), 0

    def check_options(self, task: TaskConfig) -> dict[str, Any]:
        options = super().check_options(task)
        if options["answer"] not in ANSWER_MODES:
            raise HarnessError(
                f"task {task.name}: naming option answer={options['answer']} (expected generate or rank)"
            )
        if options["query"] not in QUERY_MODES:
            raise HarnessError(
                f"task {task.name}: naming option query={options['query']} (expected new or support: the query is "
                "a new image of its class, or one of its own support images)"
            )
        return options

    def rows(self, task: TaskConfig, dataset: Dataset, seed: int) -> list[Row]:
        """Released episodes as they are, else episodes drawn from the source's classes by ``seed``."""
        if _released(task, dataset):
            return dataset.rows(task.split)
        opts = self.check_options(task)
        classes, query_pool = dataset.classes, None
        if opts["support_vendors"]:
            classes = dataset.classes_from(opts["support_vendors"])
            query_pool = dataset.classes_from([opts["query_vendor"]])
        if task.split == DEV:
            classes, query_pool = _dev_classes(task, dataset, classes, query_pool, opts["inner_shots"])
        if not classes:
            raise HarnessError(f"task {task.name}: data source {dataset.name} has no image classes to name")
        return build_episodes(classes, ways=opts["ways"], inner_shots=opts["inner_shots"], repeats=opts["repeats"],
                              induction=opts["induction"], open_ended=opts["open_ended"], n_episodes=opts["episodes"],
                              seed=seed, task=task.name, query_pool=query_pool,
                              query_from_support=opts["query"] == "support")  # fmt: skip

    def support_pool(self, task: TaskConfig, dataset: Dataset) -> list[Row]:
        return []

    def prompt(self, task: TaskConfig, dataset: Dataset, row: Row, support: Sequence[Row]) -> Prompt:
        from harness.prompt import Image

        prompt: Prompt = [row.induction] if row.induction else []
        for image, name in row.support:
            prompt += [Image(image, dataset.image(image)), support_text(name)]
        return prompt + super().prompt(task, dataset, row, support)

    def stand_ins(self, task: TaskConfig, dataset: Dataset, seed: int) -> dict[str, str]:
        """Every image of the source's classes mapped to an image of another class, one to one (episodes from
        files, whose classes are not known, to another image of the release)."""
        from harness.conditions import derangement, other_class

        if _released(task, dataset):
            rows = dataset.rows(task.split)
            images = [key for r in rows for key in (r.image, *(k for k, _ in r.support))]
            return derangement(images, f"shuffled|{task.name}|{task.split}|{seed}")
        return other_class(dataset.classes, f"shuffled|{task.name}|classes|{seed}")

    def too_long(self, task: TaskConfig, shots: int, fits: int | None) -> str:
        return "use fewer ways or inner shots (--task-set ways=... / inner_shots=...)"

    def answer_mode(self, task: TaskConfig) -> str:
        return self.check_options(task)["answer"]

    def shot_answers(self, row: Row, support: Sequence[Row]) -> list[str]:
        """The names the episode's support shows, in prompt order (its own support: ``support`` is empty)."""
        return [name for _, name in row.support]

    def candidates(self, row: Row) -> list[str]:
        """The episode's names, sorted (the first wins a tie), each after a space: " dax"."""
        return sorted({name for _, name in row.support})

    def settings(self, task: TaskConfig, dataset: Dataset) -> dict[str, Any]:
        if _released(task, dataset):  # released episodes: their own setting, which the file names
            return {"answer": self.check_options(task)["answer"]}
        return super().settings(task, dataset)  # generated episodes: their setting goes with the numbers

    def record(self, task: TaskConfig, dataset: Dataset, shots: int) -> dict[str, Any]:
        released = _released(task, dataset)
        return {
            **super().record(task, dataset, shots),
            "shots": 0 if released else self.check_options(task)["inner_shots"],
        }


def _released(task: TaskConfig, dataset: Dataset) -> bool:
    """Whether the task's queries are released episodes (a split of the source), not drawn from its classes."""
    return task.split in dataset.splits and task.split != DEV


def _dev_classes(task: TaskConfig, dataset: Dataset, classes: dict, query_pool: dict | None,
                 inner_shots: int) -> tuple[dict, dict]:  # fmt: skip
    """(support classes, query pool) of dev episodes: queries among the source's dev images, support among the
    other images of the support classes (the classes with a dev image and ``inner_shots`` others). Only where the
    test episodes query another group of images (emoji's twitter drawings), so that no test query is a dev query."""
    if query_pool is None or not dataset.held_out:
        raise HarnessError(f"task {task.name} --split dev: its episodes query any image of {dataset.name}, so no "
                           "image is kept from its test queries; it has no dev split")  # fmt: skip
    held = dataset.held_out
    queries = {c: [k for k in keys if k in held] for c, keys in classes.items()}
    support = {c: [k for k in keys if k not in held] for c, keys in classes.items()}
    kept = [c for c in classes if queries[c] and len(support[c]) >= inner_shots]
    return {c: support[c] for c in kept}, {c: queries[c] for c in kept}


KINDS.add("naming", Naming())
METRICS.add(
    "naming_accuracy",
    Metric("naming accuracy", sample=lambda task, prediction, row: naming_accuracy(prediction, row.answers[0])),
)
