"""Frozen's open-ended naming protocol (Tsimpoukelli et al. 2021, section 4.3): episodes and texts.

An episode has ``ways`` classes, each given a name: a nonsense word for open-ended naming (the
model must bind a new word to a new visual category from the support alone), or the class's real
name for real-name naming. The support shows, for each class, ``inner_shots`` images, each followed
by ``"This is a {name}."``; classes are interleaved (for every shot position, all classes in a
seeded order), and the whole block is repeated ``repeats`` times. Optional task induction text
("Answer with dax or blicket.") comes first. The query is one more image of one of the classes,
never one of the support images, followed by ``QUERY_TEXT``; the model is right when its text, up
to the first period or newline, is the class's name (see ``harness.metrics.naming``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from harness.data import Row
from harness.errors import HarnessError

# Frozen's nonsense words. Frozen's release (fh295.github.io/frozen.html, open_ended_mi.tar.gz) only
# says "randomized nonsense names ('dax', 'blicket' etc.)"; the full set below is the list an early
# MAGMA-era re-implementation of these benchmarks (the `multimodal_fewshot` package, module with
# `OpenEndedFewShot`) keeps as "the words from frozen", next to a separate list of extras it uses
# only "if we need more". Five words cover Frozen's largest (5-way) episodes. We could not read
# the release's own JSON files to confirm the list word for word.
NONSENSE_NAMES: tuple[str, ...] = ("dax", "blicket", "slation", "perpo", "shously")

# The protocol's fixed query text. For real names beginning with a vowel ("eagle") English wants
# "an", but Frozen writes the same "This is a" for every class; changing the article per class
# would hand the model the first letter of the answer, so the text stays fixed.
QUERY_TEXT = "Question: What is this? Answer: This is a"


def support_text(name: str) -> str:
    """The caption after each support image. "a", never "an": the protocol's fixed text (see above)."""
    return f"This is a {name}."


def induction_text(names: Sequence[str]) -> str:
    """The task-induction sentence that lists the episode's names.

    Two names give the paper's own example, "Answer with dax or blicket."; for more (5-way), which
    the paper shows no example of, we extend it the natural way: "Answer with a, b, c, d or e."
    """
    names = list(names)
    if not names:
        raise HarnessError("task induction needs at least one name")
    if len(names) == 1:
        return f"Answer with {names[0]}."
    return f"Answer with {', '.join(names[:-1])} or {names[-1]}."


def display_name(class_name: str) -> str:
    """A class's real name as written in the prompt: underscores become spaces ("golden_retriever")."""
    return " ".join(class_name.replace("_", " ").split())


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
) -> list[Row]:
    """``n_episodes`` naming episodes over ``classes`` (class name -> image keys), one Row each.

    Deterministic in its arguments alone: classes and their images are sorted first (so neither
    dict nor list order matters) and episode ``i`` draws everything from
    ``random.Random(f"{task}|{seed}|{i}")``. Each episode: ``ways`` distinct classes; their names
    (nonsense names shuffled per episode, or the real names); ``inner_shots`` distinct support
    images per class; the query class, chosen among the episode's classes, and its query image,
    taken from ``query_pool`` when given (e.g. another emoji vendor's drawings) and never one of the
    episode's support images.
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
    need = inner_shots if queries is not None else inner_shots + 1
    for name in names:
        if len(pool[name]) < need:
            what = f"{inner_shots} support image(s)" + ("" if queries is not None else " and a query image")
            raise HarnessError(
                f"naming task {task}: class '{name}' has {len(pool[name])} image(s); "
                f"{inner_shots}-shot episodes need {what}"
            )
        if queries is not None and not queries.get(name):
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
        candidates = [key for key in (pool if queries is None else queries)[target] if key not in used]
        if not candidates:
            raise HarnessError(
                f"naming task {task}: episode {index}: every query image of class '{target}' is a support image"
            )
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
