"""Every task's tiny twin end to end through the CLI, with the tiny hub LM: the generated data in the real
source's layout, read by the real loader, evaluated and scored; and every task of the suite has a twin."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import registry
from harness.cli.main import main

TASKS = Path(registry.__file__).resolve().parent / "catalog" / "tasks"

# twin -> (the metric in its metrics.json, the number of queries)
TWINS = {
    "vqav2-tiny": ("VQA accuracy", 40),
    "okvqa-tiny": ("VQA accuracy", 30),
    "easyvqa-full-tiny": ("VQA accuracy", 240),
    "easyvqa-attr-tiny": ("VQA accuracy", 120),
    "easyvqa-caption-tiny": ("CIDEr", 40),
    "emoji-caption-tiny": ("CIDEr", 24),
    "tuxpaint-caption-tiny": ("CIDEr", 16),
    "miniimagenet-realname-tiny": ("naming accuracy", 40),
    "miniimagenet-frozen-episodes-tiny": ("naming accuracy", 20),
    "emoji-open-tiny": ("naming accuracy", 40),
    "emoji-realname-tiny": ("naming accuracy", 40),
    "emoji6-open-tiny": ("naming accuracy", 40),
    "emoji6-realname-tiny": ("naming accuracy", 40),
    "easyvqa-folders-open-tiny": ("naming accuracy", 40),
    "easyvqa-folders-realname-tiny": ("naming accuracy", 40),
}
IMAGE = re.compile(r"<image:([^>]+)>")


def _run(task: str, fast_recipe: list[str], caplog) -> Path:
    caplog.set_level("INFO")
    caplog.clear()
    args = ["run", "--task", task, "--model", "gpt2-frozen", "--images", "real", "--quiet"]
    assert main(args + [a for s in fast_recipe for a in ("--set", s)]) == 0
    (folder,) = [Path(line.split("run record: ")[1]) for line in caplog.text.splitlines() if "run record: " in line]
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TWINS))
def test_tiny_twin_runs_end_to_end(task: str, tiny_hub, fast_recipe, caplog) -> None:
    folder = _run(task, fast_recipe, caplog)
    metrics = json.loads((folder / "metrics.json").read_text())
    metric, n = TWINS[task]
    assert (metrics["metric"], metrics["n"]) == (metric, n)
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == n and all(0.0 <= s["score"] <= 1.0 for s in samples)
    images = [IMAGE.findall(s["prompt"]) for s in samples]
    if task.startswith("emoji-") and task != "emoji-caption-tiny":  # support from google and facebook, query twitter
        assert all(keys[-1].startswith("twitter/") for keys in images)
        assert all(k.split("/")[0] in ("google", "facebook") for keys in images for k in keys[:-1])
    if task.startswith("emoji6-"):  # support from the five vendors that are not twitter, the query from twitter
        assert all(keys[-1].startswith("twitter/") for keys in images)
        support = {k.split("/")[0] for keys in images for k in keys[:-1]}
        assert support == {"google", "facebook", "apple", "emojione", "messenger"}
    if task == "emoji-caption-tiny":
        assert all(keys == [keys[0]] and keys[0].startswith("twitter/") for keys in images)
    if task in (
        "miniimagenet-realname-tiny",
        "emoji-realname-tiny",
        "emoji6-realname-tiny",
        "easyvqa-folders-realname-tiny",
    ):  # real names, from the folder or concept
        assert all(re.search(r"This is a (\w+) (circle|rectangle|triangle)\.", s["prompt"]) for s in samples)
    if task in ("vqav2-tiny", "okvqa-tiny"):  # COCO image ids of val2014
        assert all(len(keys) == 1 and re.fullmatch(r"val/\d+", keys[0]) for keys in images)


def _catalog() -> list[str]:
    return sorted(p.stem for p in TASKS.glob("*.yaml"))


def test_every_task_has_a_tiny_twin_of_its_kind() -> None:
    names = _catalog()
    parents = [n for n in names if not n.endswith(("-tiny", "-hub"))]
    assert "vqav2" in parents and len(parents) >= 13
    missing = [n for n in parents if f"{n}-tiny" not in names]
    assert not missing, f"tasks without a -tiny twin: {missing}"
    for name in parents:
        twin = registry.TASKS.get(f"{name}-tiny")
        assert twin.kind == registry.TASKS.get(name).kind, name


def test_new_twins_read_generated_sources_of_the_real_layouts() -> None:
    """The twins of official-format tasks read a tiny source of their own layout, not tiny-shapes."""
    expected = {
        "vqav2-tiny": "tiny-vqav2",
        "okvqa-tiny": "tiny-okvqa",
        "miniimagenet-realname-tiny": "tiny-miniimagenet",
        "miniimagenet-frozen-episodes-tiny": "tiny-frozen-episodes",
        "emoji-open-tiny": "tiny-emoji",
        "emoji-realname-tiny": "tiny-emoji",
        "emoji-caption-tiny": "tiny-emoji",
        "emoji6-open-tiny": "tiny-emoji6",
        "emoji6-realname-tiny": "tiny-emoji6",
        "tuxpaint-caption-tiny": "tiny-tuxpaint",
        "easyvqa-folders-open-tiny": "tiny-easyvqa-folders",
        "easyvqa-folders-realname-tiny": "tiny-easyvqa-folders",
    }
    assert {name: registry.TASKS.get(name).source for name in expected} == expected
    assert set(TWINS) | {"easyvqa-tiny", "coco-tiny", "miniimagenet-open-tiny"} == {
        n for n in _catalog() if n.endswith("-tiny")
    }
