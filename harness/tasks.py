"""Tasks: a TaskConfig's rows, its prompts and its scoring. Kind-specific code lives here once.

- vqa: ``[img] "Question: {q} Answer:"``; k-shot puts k solved examples, each with its image, in
  front; scored with the official VQA accuracy, overall and per answer type.
- caption: ``[img] "A picture of"`` (the prompt is part of the task YAML); scored by pycocoevalcap
  (BLEU, METEOR, ROUGE-L, CIDEr) after its PTB tokenizer; the per-sample score is the image's CIDEr.
- naming: Frozen's open-ended miniImageNet protocol; each row is an episode whose support (and
  optional task induction) comes with it; exact match of the generated name.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from harness import data, paths
from harness.config import TaskConfig
from harness.data import Dataset, Row
from harness.errors import HarnessError
from harness.metrics import vqa
from harness.prompt import Image, Prompt

KINDS = ("vqa", "caption", "naming")
NAMING_OPTIONS = {"ways": 2, "inner_shots": 1, "repeats": 1, "induction": False, "open_ended": True,
                  "episodes": 200, "support_vendors": None, "query_vendor": None, "answer": "generate"}  # fmt: skip
# answer: "generate" (Frozen's protocol: the generated text must be the name) or "rank" (the episode's
# name with the highest log-likelihood after the query is the answer: a closed-set reading).
ANSWER_MODES = ("generate", "rank")
# The naming options that change what a score means: recorded with it, and shown with the task's name.
NAMING_SETTING = ("ways", "repeats", "induction")


def naming_label(task: str, ways: int, repeats: int = 1, induction: bool = False) -> str:
    """A naming task's name with its setting, e.g. 'miniimagenet-open 5-way +induction': the tables'
    task label, so that 2-way and 5-way numbers are never averaged together."""
    return f"{task} {ways}-way" + (f" x{repeats} repeats" if repeats > 1 else "") + (" +induction" if induction else "")


RANKED = " (ranked)"  # after the task label of a naming run answered by ranking the episode's names


def fingerprint(task: TaskConfig, dataset: Dataset) -> str:
    return paths.fingerprint({"task": dataclasses.asdict(task), "data": dataset.version})


def load(task: TaskConfig) -> Dataset:
    return data.load(task.source, task.hub or None)


def naming_options(task: TaskConfig) -> dict:
    unknown = set(task.options) - set(NAMING_OPTIONS)
    if unknown:
        raise HarnessError(f"task {task.name}: unknown naming option '{sorted(unknown)[0]}' (known: {', '.join(NAMING_OPTIONS)})")
    options = {**NAMING_OPTIONS, **task.options}
    if options["answer"] not in ANSWER_MODES:
        raise HarnessError(f"task {task.name}: naming option answer={options['answer']} (expected generate or rank)")
    return options


def rows(task: TaskConfig, dataset: Dataset, seed: int = 0) -> list[Row]:
    """The evaluation rows: the whole split, or a subset fixed by the task's version.

    ``seed`` draws generated naming episodes (so seeds of a naming task are different episodes);
    other kinds have fixed rows and use the seed for their few-shot support only.
    """
    if task.kind not in KINDS:
        raise HarnessError(f"task {task.name}: unknown kind '{task.kind}' (known: {', '.join(KINDS)})")
    if task.kind == "naming":
        all_rows = _episodes(task, dataset, seed)
    elif task.kind == "caption":
        all_rows = caption_rows(dataset, task.split)
    else:
        all_rows = dataset.rows(task.split)
    if not all_rows:
        raise HarnessError(f"task {task.name}: split '{task.split}' of {dataset.name} is empty")
    if task.subsample and task.subsample < len(all_rows):
        chosen = sorted(random.Random(f"{task.name}|v{task.version}").sample(range(len(all_rows)), task.subsample))
        return [all_rows[i] for i in chosen]
    return list(all_rows)


def caption_rows(dataset: Dataset, split: str) -> list[Row]:
    """Caption references per image: the source's own rows, or its captions grouped by image."""
    given = dataset.splits.get(split)
    if given and given[0].answer_type == "caption":
        return given
    by_image: dict[str, list[str]] = defaultdict(list)
    for caption in dataset.captions.get(split, []):
        by_image[caption.image].append(caption.text)
    return [Row(id=image, image=image, answers=tuple(refs), answer_type="caption") for image, refs in by_image.items()]


def _episodes(task: TaskConfig, dataset: Dataset, seed: int) -> list[Row]:
    from harness.naming import build_episodes

    if task.split in dataset.splits:  # episodes released as files (Frozen's own)
        return dataset.rows(task.split)
    opts = naming_options(task)
    classes, query_pool = dataset.classes, None
    if opts["support_vendors"]:
        from harness.data.offline import emoji_classes

        classes = emoji_classes(dataset, opts["support_vendors"])
        query_pool = emoji_classes(dataset, [opts["query_vendor"]])
    if not classes:
        raise HarnessError(f"task {task.name}: data source {dataset.name} has no image classes to name")
    return build_episodes(
        classes,
        ways=opts["ways"],
        inner_shots=opts["inner_shots"],
        repeats=opts["repeats"],
        induction=opts["induction"],
        open_ended=opts["open_ended"],
        n_episodes=opts["episodes"],
        seed=seed,
        task=task.name,
        query_pool=query_pool,
    )


def reference_answer(row: Row) -> str:
    """The answer written into a solved support example: the most common human answer."""
    return Counter(row.answers).most_common(1)[0][0]


def support_pool(task: TaskConfig, dataset: Dataset) -> list[Row]:
    if task.kind == "naming":
        return []  # an episode carries its own support
    if task.kind == "caption":
        return caption_rows(dataset, task.support_split)
    return dataset.rows(task.support_split)


def build_prompt(task: TaskConfig, dataset: Dataset, row: Row, support: Sequence[Row]) -> Prompt:
    prompt: Prompt = []
    if task.kind == "naming":
        from harness.naming import support_text

        if row.induction:
            prompt.append(row.induction)
        for image, name in row.support:
            prompt += [Image(image, dataset.image(image)), support_text(name)]
    for shot in support:
        prompt.append(Image(shot.image, dataset.image(shot.image)))
        prompt.append(task.shot_prompt.format(question=shot.question, answer=reference_answer(shot)))
    prompt.append(Image(row.image, dataset.image(row.image)))
    prompt.append(task.prompt.format(question=row.question))
    return prompt


def score(task: TaskConfig, prediction: str, row: Row) -> float | None:
    """The per-sample score, or None for captions (scored over the whole set at the end)."""
    if task.kind == "naming":
        from harness.metrics.naming import naming_accuracy

        return naming_accuracy(prediction, row.answers[0])
    if task.kind == "caption":
        return None
    if task.normalize_prediction:
        prediction = vqa.normalize_answer(prediction)
    return vqa.vqa_accuracy(prediction, row.answers)


def score_corpus(task: TaskConfig, rows: Sequence[Row], predictions: Sequence[str]) -> tuple[list[float], dict]:
    """Corpus-level scores (captions): per-sample CIDEr, and pycocoevalcap's metrics in percent."""
    from harness.metrics.caption import score_captions, score_per_image

    references = {r.id: list(r.answers) for r in rows}
    candidates = dict(zip((r.id for r in rows), predictions))
    corpus = score_captions(references, candidates)
    per_image = score_per_image(references, candidates)
    return [per_image[r.id]["CIDEr"] for r in rows], {k: round(100 * v, 2) for k, v in corpus.items()}


def summarize(task: TaskConfig, scores: Sequence[float], rows: Sequence[Row]) -> dict:
    """The headline figure (key "score") and its breakdowns, rounded like the official scripts."""
    if task.kind == "vqa":
        return {
            "score": vqa.aggregate(scores),
            "metric": "VQA accuracy",
            "breakdown": vqa.aggregate_by_type(scores, [r.answer_type for r in rows]),
            "per_question_type": vqa.aggregate_by_type(scores, [r.question_type or r.answer_type for r in rows]),
        }
    if task.kind == "naming":
        return {
            "score": vqa.official_round(100 * sum(scores) / len(scores)),
            "metric": "naming accuracy",
            "breakdown": {},
        }
    return {"score": vqa.official_round(100 * sum(scores) / len(scores)), "metric": "CIDEr", "breakdown": {}}
