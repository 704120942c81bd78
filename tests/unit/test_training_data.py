"""What recipes train on (harness.training.trainset): the recipe fields, the caption mixture, the supervised recipe's
questions, and that nothing else ever trains on a task's prompt or question text."""

from __future__ import annotations

import dataclasses
import re
import string
from collections import Counter

import pytest

from harness import registry
from harness.config import replace_fields
from harness.data import dev, sources
from harness.data.shapes import COLORS, SHAPES
from harness.errors import HarnessError
from harness.training.trainset import TrainSet, batch_indices, check_question_types, render

EASYVQA = "easyvqa"


@pytest.fixture
def easyvqa() -> None:
    pytest.importorskip("easy_vqa", reason="the built-in recipes train on easy-vqa (scripts/setup.sh installs it)")


def recipe(**changes):
    base = registry.RECIPES.get("frozen")
    return replace_fields(base, {"train_data": "tiny-shapes", "batch_size": 8, **changes}, "test")


def texts(r, steps: int = 40) -> list[str]:
    trainset = TrainSet(r)
    return [render(trainset.batch(step)[i : i + r.pairs], r) for step in range(steps)
            for i in range(0, r.batch_size, r.pairs)]  # fmt: skip


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("pairs", 0, "invalid pairs = 0 (1 or more, and batch_size 8 a multiple of it)"),
        ("pairs", 3, "invalid pairs = 3"),
        ("loss_on", "first", "invalid loss_on = 'first' (all or last)"),
        ("caption_style", "fancy", "invalid caption_style = 'fancy' (plain or varied)"),
        ("train_mix", ["emoji"], "invalid train_mix = ('emoji',)"),
        ("train_mix", ["emoji:0.7", "tuxpaint:0.4"], "together at most 1"),
        ("train_mix", ["emoji:0"], "invalid train_mix"),
        ("aux_embed", -0.1, "invalid aux_embed = -0.1 (0 or more)"),
        ("lr_schedule", "linear", "invalid lr_schedule = 'linear' (constant or cosine)"),
        ("train_text", "questions", "invalid train_text = 'questions' (captions or vqa)"),
        ("pair_repeat", 1.5, "invalid pair_repeat = 1.5 (from 0 to 1)"),
    ],
)
def test_new_recipe_fields_are_checked_in_one_line_naming_the_field(field, value, says):
    with pytest.raises(HarnessError) as err:
        recipe(**{field: value})
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_mix_in_yaml_is_a_list_of_source_share_strings():
    r = recipe(train_mix=["tiny-emoji:0.25", "tiny-tuxpaint:.5"])
    assert r.mix() == [("tiny-emoji", 0.25), ("tiny-tuxpaint", 0.5)]


def test_the_plain_path_draws_the_batches_it_always_drew(monkeypatch):
    """Frozen's own recipe: the batches of the code before these fields, hard-coded (seed 3, batch 4), drawn again
    when no image is held out for dev; with the dev images held out, the same walk over the others."""
    r = recipe(batch_size=4, seed=3)
    held = dev.dev_images(sources.load("tiny-shapes"))
    kept = [c.text for c in sources.load("tiny-shapes").captions["train"] if c.image not in held]
    assert len(kept) == 240 - 24
    assert [it.target for it in TrainSet(r).batch(7)] == [kept[i] for i in batch_indices(216, 4, 3, 7)]
    monkeypatch.setattr(dev, "dev_images", lambda dataset: frozenset())
    trainset = TrainSet(r)
    got = {step: [(it.source, it.image, it.target, it.context) for it in trainset.batch(step)] for step in (0, 1, 61)}
    assert got[0] == [("tiny-shapes", "train/203", "a brown triangle.", ""), ("tiny-shapes", "train/187", "a gray triangle.", ""),
                      ("tiny-shapes", "train/184", "a teal circle.", ""), ("tiny-shapes", "train/107", "a black circle.", "")]  # fmt: skip
    assert [i for _, i, _, _ in got[1]] == ["train/162", "train/100", "train/24", "train/141"]
    assert [i for _, i, _, _ in got[61]] == ["train/160", "train/58", "train/156", "train/4"]
    captions = sources.load("tiny-shapes").captions["train"]
    assert [it.target for it in trainset.batch(7)] == [captions[i].text for i in batch_indices(240, 4, 3, 7)]


def test_mixture_draws_are_seeded_and_hold_their_shares():
    r = recipe(batch_size=40, pairs=2, train_mix=["tiny-emoji:0.3", "tiny-tuxpaint:0.2"])
    trainset = TrainSet(r)
    assert trainset.batch(5) == TrainSet(r).batch(5)  # the same (seed, step): the same batch, in a new process too
    assert trainset.batch(5) != trainset.batch(6)
    assert trainset.batch(5) != TrainSet(dataclasses.replace(r, seed=1)).batch(5)
    sequences = [batch[i : i + 2] for step in range(100) for batch in [trainset.batch(step)] for i in range(0, 40, 2)]
    assert len(sequences) == 2000
    assert all(len({it.source for it in seq}) == 1 for seq in sequences)  # a sequence comes from one source
    shares = Counter(seq[0].source for seq in sequences)
    for source, share in {"tiny-shapes": 0.5, "tiny-emoji": 0.3, "tiny-tuxpaint": 0.2}.items():
        assert abs(shares[source] / 2000 - share) <= 0.03, shares
    # each image comes from its own caption's dataset
    item = next(it for seq in sequences for it in seq if it.source == "tiny-emoji")
    assert trainset.image(item).shape == sources.load("tiny-emoji").image(item.image).shape


def test_the_twitter_emoji_never_train():
    """The twitter drawings are the naming and captioning queries: no training batch of a mix with emoji holds one."""
    r = recipe(batch_size=16, pairs=2, train_mix=["tiny-emoji:0.9"])
    trainset = TrainSet(r)
    emoji = [it for step in range(200) for it in trainset.batch(step) if it.source == "tiny-emoji"]
    vendors = Counter(it.image.split("/")[0] for it in emoji)
    assert set(vendors) == {"google", "facebook"} and len(emoji) > 2000, vendors
    twitter = {c.image for c in sources.load("tiny-emoji").captions["test"]}
    assert twitter and all(k.startswith("twitter/") for k in twitter) and not twitter & {it.image for it in emoji}


def _ends_on_a_repeat(seq) -> bool:
    return any(it.target == seq[-1].target and it.image != seq[-1].image for it in seq[:-1])


def test_repeated_pairs_end_that_share_of_sequences_on_another_image_of_an_earlier_caption(monkeypatch):
    # Every training image of the tiny sources, none held out for dev: a tiny-emoji concept then always has another
    # image to repeat it with (held out, a quarter of its 48 images would leave some concepts with one).
    monkeypatch.setattr(dev, "dev_images", lambda dataset: frozenset())
    r = recipe(batch_size=40, pairs=4, pair_repeat=0.5, train_mix=["tiny-emoji:0.5"])
    trainset = TrainSet(r)
    assert trainset.batch(3) == TrainSet(r).batch(3) and trainset.batch(3) != trainset.batch(4)  # seeded
    sequences = [b[i : i + 4] for step in range(100) for b in [trainset.batch(step)] for i in range(0, 40, 4)]
    plain = TrainSet(dataclasses.replace(r, pair_repeat=0.0))
    unchanged = [b[i : i + 4] for step in range(100) for b in [plain.batch(step)] for i in range(0, 40, 4)]
    assert all(a[:3] == b[:3] for a, b in zip(sequences, unchanged))  # only the last pair ever changes
    repeats = sum(map(_ends_on_a_repeat, sequences)) / len(sequences)
    by_chance = sum(map(_ends_on_a_repeat, unchanged)) / len(unchanged)
    # half the sequences are made to repeat; the rest repeat as often as they did by chance
    assert abs(repeats - (0.5 + 0.5 * by_chance)) <= 0.05, (repeats, by_chance)
    every = TrainSet(dataclasses.replace(r, pair_repeat=1.0))
    ends = [b[i : i + 4] for step in range(50) for b in [every.batch(step)] for i in range(0, 40, 4)]
    assert all(map(_ends_on_a_repeat, ends))  # each tiny caption has several images
    assert all(len({it.source for it in seq}) == 1 for seq in ends)  # the repeat comes from the sequence's source
    twitter = {c.image for c in sources.load("tiny-emoji").captions["test"]}
    assert not twitter & {it.image for seq in ends for it in seq}


def test_varied_captions_reword_easyvqa_captions_only():
    r = recipe(caption_style="varied", batch_size=16)
    items = [it for step in range(20) for it in TrainSet(r).batch(step)]
    assert len({it.target for it in items}) > 30 and any(not it.target.startswith("a ") for it in items)
    assert all(re.search(r"\b(circle|rectangle|triangle)\b", it.target) for it in items)


def _template_parts() -> set[str]:
    """The fixed text of every built-in task's prompt and shot prompt, and of the naming protocol's texts."""
    from harness.kinds import naming

    parts = {"Question:", "Answer:", "What is this?"}
    fixed = [naming.QUERY_TEXT, naming.support_text("{name}"), naming.induction_text(["{a}", "{b}"])]
    for name in registry.TASKS.names():
        task = registry.TASKS.get(name)
        for text in [task.prompt, task.shot_prompt, *fixed]:
            for literal, *_ in string.Formatter().parse(text):
                pieces = re.split(r"\{[^}]*\}|\n|Question: |Answer: ", literal)
                parts |= {p.strip() for p in pieces if len(p.strip()) >= 4}
    return parts


def _caption_recipes() -> list:
    out = []
    for name in registry.RECIPES.names():
        r = registry.RECIPES.get(name)
        if r.train_text != "captions":
            continue
        out += [dataclasses.replace(r, batch_size=16), replace_fields(r, {"pairs": 4, "caption_style": "varied",
                "train_mix": ["tiny-emoji:0.3", "tiny-tuxpaint:0.3"], "loss_on": "last"}, name)]  # fmt: skip
    return out


def test_no_recipe_but_supervised_trains_on_a_prompt_template_or_a_question(easyvqa):
    parts = _template_parts()
    assert {"Question:", "Answer:", "A picture of", "This is a"} <= parts, parts
    questions = {r.question for split in ("train", "test") for r in sources.load(EASYVQA).splits[split]}
    questions |= {r.question for r in sources.load("tiny-shapes").splits["train"]}
    recipes = _caption_recipes()
    assert {r.name for r in recipes} == set(registry.RECIPES.names()) - {"supervised"}
    for r in recipes:
        drawn = texts(r, steps=25)
        assert len(drawn) >= 100 and any("tiny-emoji" in t for t in drawn) == bool(r.train_mix)
        for text in drawn:
            words = re.sub(r"\[img:[^\]]*\]", " ", text)
            assert not [p for p in parts if p in words], (r.name, text)
            assert not [q for q in questions if q in words], (r.name, text)


def test_the_supervised_recipe_trains_on_training_questions_only(easyvqa):
    r = dataclasses.replace(registry.RECIPES.get("supervised"), batch_size=32)
    assert (r.train_text, r.train_data, r.train_lm, r.train_encoder) == ("vqa", EASYVQA, False, True)
    data = sources.load(EASYVQA)
    train = {(row.image, row.question, row.answers[0]) for row in data.splits["train"]}
    test_images = {row.image for row in data.splits["test"]}
    items = [it for step in range(25) for it in TrainSet(r).batch(step)]
    assert len(items) == 800
    assert r.question_types == ("color", "shape") and all(it.target not in (" yes", " no") for it in items)
    for it in items:
        question = it.context.removeprefix("Question: ").removesuffix(" Answer:")
        assert it.context == f"Question: {question} Answer:" and it.target.startswith(" ")
        assert (it.image, question, it.target[1:]) in train and it.image not in test_images
    assert render([items[0]], r) == f"[img:easyvqa/{items[0].image}]{items[0].context}«{items[0].target}<eos>»"


def test_question_types_keep_only_training_questions_of_those_types():
    every = TrainSet(recipe(train_text="vqa", aux_embed=0.0)).pools[0][1]
    colour = TrainSet(recipe(train_text="vqa", aux_embed=0.0, question_types=("color",))).pools[0][1]
    both = TrainSet(recipe(train_text="vqa", aux_embed=0.0, question_types=("color", "shape"))).pools[0][1]
    kinds = Counter("color" if it.target[1:] in COLORS else "shape" if it.target[1:] in SHAPES else it.target[1:]
                    for it in every)  # fmt: skip
    assert set(kinds) == {"color", "shape", "yes", "no"}
    assert colour and all(it.target[1:] in COLORS for it in colour) and len(colour) == kinds["color"]
    assert len(both) == kinds["color"] + kinds["shape"] and {it.target for it in both} >= {" red", " circle"}
    assert set(colour) <= set(both) <= set(every)


def test_an_unknown_question_type_is_one_line():
    with pytest.raises(HarnessError) as err:
        check_question_types(recipe(train_text="vqa", question_types=("color", "colour")))
    assert str(err.value) == ("recipe 'frozen': question_types: no training question of tiny-shapes has the type "
                              "'colour' (its types: color, shape, yes/no)")  # fmt: skip


def test_a_source_without_training_texts_is_one_line():
    with pytest.raises(HarnessError, match="training set 'tiny-emoji' has no training questions"):
        TrainSet(recipe(train_data="tiny-emoji", train_text="vqa"))
