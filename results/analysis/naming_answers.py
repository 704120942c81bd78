"""What a naming run's answers are: the share that is one of the episode's support names, the accuracy among
those (chance: 1/ways), and the share that is a word of the easy-vqa training captions (a shape or a colour).

Reads every naming run folder of a harness home; used for results/frozen-mini.md:

    HARNESS_HOME=<home> python results/analysis/naming_answers.py [task, default emoji-open]
"""

from __future__ import annotations

import collections
import functools
import json
import re
import sys

from harness import paths
from harness.data.shapes import COLORS, SHAPES
from harness.models.spec import resolve

CAPTION_WORDS = set(COLORS) | set(SHAPES)  # every word of an easy-vqa training caption but "a"
SUPPORT = re.compile(r"This is an? ([^.<]+)\.")


@functools.cache
def registry_fingerprint(name: str) -> str:
    """The fingerprint of the registry's model of that name (a run of another one was made with --set)."""
    return resolve(name, {}).fingerprint


def main(task: str) -> None:
    """One row per model (its fingerprint after the name where the model is a variant set with --set), naming
    setting and image condition."""
    totals: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for config_path in sorted((paths.home() / "runs" / task).glob("*/*/config.json")):
        config = json.loads(config_path.read_text())
        options, settings = config["task_config"]["options"], config["settings"]
        model = config["model"]
        name = model["name"] + (
            "" if model["fingerprint"] == registry_fingerprint(model["name"]) else f" ({model['fingerprint']})"
        )
        key = (
            name,
            options["ways"],
            options["induction"],
            options["inner_shots"],
            options.get("answer", "generate"),
            options.get("query", "new"),
            settings["images"],
        )
        for line in (config_path.parent / "samples.jsonl").read_text().splitlines():
            sample = json.loads(line)
            answer = sample["prediction"].strip().lower()
            row = totals[key]
            row[0] += 1
            row[1] += answer in {name.strip().lower() for name in SUPPORT.findall(sample["prompt"])}
            row[2] += sample["score"]
            row[3] += answer in CAPTION_WORDS
    print("| model | ways | induction | inner shots | answer | query | images | answers | a support name | "
          "accuracy among those | a caption word |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (model, ways, induction, inner, answer, query, images), (n, named, right, words) in sorted(totals.items()):
        among = f"{100 * right / named:.1f}%" if named else ""
        print(f"| {model} | {ways} | {induction} | {inner} | {answer} | {query} | {images} | {n} | "
              f"{100 * named / n:.1f}% | {among} | {100 * words / n:.1f}% |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "emoji-open")
