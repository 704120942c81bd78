"""Image conditions: the names a user gives, and the shuffled control's stand-ins (no image shown as itself,
for naming no image of its own class; seeded; fixed for the split, not for the --limit subset)."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest

from harness import conditions, registry
from harness.cli.main import main
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.kinds.base import kind_of


def test_names_and_groups():
    assert conditions.parse("both") == ["real", "black"]  # what it always meant
    assert conditions.parse("all") == ["real", "black", "shuffled"]
    assert conditions.parse("real,shuffled") == ["real", "shuffled"]
    assert conditions.parse("recipe", recipe_default="black") == ["black"]
    assert conditions.parse("caption,real,caption") == ["caption", "real"]
    with pytest.raises(HarnessError, match="unknown image condition 'shufled'"):
        conditions.parse("real,shufled")
    assert conditions.label("shuffled") == "images shuffled" and conditions.label("caption").endswith("(ceiling)")


def _stand_ins(task_name: str, seed: int = 0) -> tuple[dict[str, str], object, object]:
    task = registry.TASKS.get(task_name)
    dataset = tasks.load(task)
    return conditions.stand_ins("shuffled", kind_of(task), task, dataset, seed), task, dataset


def test_shuffled_vqa_is_a_seeded_derangement_of_each_split():
    mapping, task, dataset = _stand_ins("easyvqa-tiny")
    queries = {r.image for r in dataset.rows(task.split)}
    support = {r.image for r in dataset.rows(task.support_split)}
    assert set(mapping) == queries | support
    assert all(shown != image for image, shown in mapping.items())
    assert sorted(mapping[i] for i in queries) == sorted(queries)  # a permutation within the split
    assert sorted(mapping[i] for i in support) == sorted(support)
    assert _stand_ins("easyvqa-tiny")[0] == mapping  # seeded
    assert _stand_ins("easyvqa-tiny", seed=1)[0] != mapping


def test_shuffled_naming_shows_an_image_of_another_class():
    mapping, task, dataset = _stand_ins("miniimagenet-open-tiny")
    owner = {key: name for name, keys in dataset.classes.items() for key in keys}
    assert set(mapping) == set(owner) and sorted(mapping.values()) == sorted(owner)
    assert all(owner[shown] != owner[image] for image, shown in mapping.items())


def test_other_class_refuses_when_no_derangement_exists():
    with pytest.raises(HarnessError, match="more than half"):
        conditions.other_class({"a": ["a1", "a2", "a3"], "b": ["b1"]}, "s")


def test_caption_gives_each_image_its_caption_as_text():
    task = registry.TASKS.get("easyvqa-tiny")
    dataset = tasks.load(task)
    texts = conditions.stand_ins("caption", kind_of(task), task, dataset, 0)
    row = dataset.rows("test")[0]
    prompt = conditions.apply("caption", tasks.build_prompt(task, dataset, row, []), dataset, texts)
    assert len(prompt) == 1 and isinstance(prompt[0], str)  # one text, as prose
    assert prompt[0][0].isupper() and ". Question: " in prompt[0]  # "A red circle. Question: ..."


def test_caption_prompts_read_as_prose_with_a_space_where_texts_would_touch():
    from harness.prompt import Image

    dataset = types.SimpleNamespace(name="toy")
    pixels = None
    prompt = ["Answer with dax or blicket.", Image("a", pixels), "This is a dax.", Image("b", pixels), "This is a blicket.",
              Image("a", pixels), "Question: What is this? Answer: This is a"]  # fmt: skip
    texts = {"a": "A cat.", "b": "A dog."}
    assert conditions.apply("caption", prompt, dataset, texts) == [
        "Answer with dax or blicket. A cat. This is a dax. A dog. This is a blicket. A cat. "
        "Question: What is this? Answer: This is a"
    ]
    vqa = [Image("a", pixels), "Question: q? Answer: red\n", Image("b", pixels), "Question: q? Answer:"]
    assert conditions.apply("caption", vqa, dataset, texts) == [
        "A cat. Question: q? Answer: red\nA dog. Question: q? Answer:"
    ]
    # Other conditions keep the segments as they are.
    assert conditions.apply("real", prompt, dataset) is prompt


def test_a_caption_run_is_another_run_than_one_before_captions_read_as_prose():
    from harness.evaluation.evaluate import EvalSettings

    assert EvalSettings(images="caption").describe()["caption_text"] == "prose"
    assert "caption_text" not in EvalSettings(images="real").describe()  # every other run keeps its fingerprint


def _shown(folder) -> list[tuple[str, list[str]]]:
    lines = (folder / "samples.jsonl").read_text().splitlines()
    return [(s["id"], re.findall(r"<image:([^>]+)>", s["prompt"])) for s in map(json.loads, lines)]


def test_a_shuffled_run_shows_no_query_or_support_image_as_itself(tiny_hub, fast_recipe, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    caplog.set_level("INFO")
    sets = [a for s in fast_recipe for a in ("--set", s)]
    args = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--shots", "2", "--limit", "12", "--quiet"]
    assert main([*args, "--images", "real,shuffled", *sets]) == 0
    folders = [line.split("run record: ")[1] for line in caplog.text.splitlines() if "run record: " in line]
    real, shuffled = (_shown(Path(f)) for f in folders)
    assert [i for i, _ in real] == [i for i, _ in shuffled]
    for (_, originals), (_, shown) in zip(real, shuffled):
        assert len(originals) == len(shown) == 3  # two support examples and the query
        assert all(a != b for a, b in zip(originals, shown))
    mapping = _stand_ins("easyvqa-tiny")[0]
    assert all(mapping[a] == b for (_, o), (_, s) in zip(real, shuffled) for a, b in zip(o, s))


def test_caption_describes_the_easyvqa_images_that_have_no_caption_from_their_questions():
    """11.5% of easy-vqa's training images have questions about only their colour or only their shape: no
    training caption. Under --images caption they are given what their questions say, never nothing."""
    pytest.importorskip("easy_vqa")
    from harness.data import easyvqa

    task = registry.TASKS.get("easyvqa-attr")
    dataset = easyvqa.load()
    texts = conditions.stand_ins("caption", kind_of(task), task, dataset, 0)
    every = {r.image for split in ("train", "test") for r in dataset.rows(split)}
    captioned = {c.image for split in ("train", "test") for c in dataset.captions[split]}
    assert every - captioned and set(dataset.descriptions) == every - captioned
    assert every <= set(texts)
    for image in list(every - captioned)[:50]:
        assert re.fullmatch(r"A (\w+ shape|\w+)\.", texts[image]), texts[image]
    caption = next(c for c in dataset.captions["train"])
    assert texts[caption.image] == caption.text[:1].upper() + caption.text[1:]
    trained = {c.text for split in dataset.captions.values() for c in split}
    assert not set(dataset.descriptions.values()) & trained  # never a training text
