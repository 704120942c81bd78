"""What a naming run's answers are: the share that is one of the episode's support names, the accuracy among
those (chance: 1/ways), and the share that is a word of the easy-vqa training captions (a shape or a colour).

Reads every naming run folder of a harness home; used for results/frozen-mini.md:

    HARNESS_HOME=<home> python results/analysis/naming_answers.py [task, default emoji-open]
"""

from __future__ import annotations

import collections
import json
import re
import sys

from harness import paths

CAPTION_WORDS = {"circle", "triangle", "rectangle", "square", "shape", "red", "blue", "green", "yellow", "gray",
                 "grey", "teal", "brown", "black", "purple", "orange"}  # fmt: skip
# The fingerprints of the registry's own models in results/frozen-mini.md (others are --set variants).
DEFAULTS = {"38cd1d105ae6ca68", "7f8e1f42512ba164", "6f1d760164a92779", "1a6528592aaea97d", "ea78984a3bbbbca2",
            "27ef6829268c5209", "77003d7547cd38ca", "519929ebf1e8ad0d", "f8cf5db6362a9ae6"}  # fmt: skip
SUPPORT = re.compile(r"This is an? ([^.<]+)\.")


def main(task: str) -> None:
    """One row per model (its fingerprint after the name where the model is a variant set with --set), naming
    setting and image condition."""
    totals: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for config_path in sorted((paths.home() / "runs" / task).glob("*/*/config.json")):
        config = json.loads(config_path.read_text())
        options, settings = config["task_config"]["options"], config["settings"]
        model = config["model"]
        name = model["name"] + (f" ({model['fingerprint']})" if model["fingerprint"] not in DEFAULTS else "")
        key = (
            name,
            options["ways"],
            options["induction"],
            options["inner_shots"],
            options.get("answer", "generate"),
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
    print("| model | ways | induction | inner shots | answer | images | answers | a support name | accuracy among those | "
          "a caption word |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (model, ways, induction, inner, answer, images), (n, named, right, words) in sorted(totals.items()):
        among = f"{100 * right / named:.1f}%" if named else ""
        print(f"| {model} | {ways} | {induction} | {inner} | {answer} | {images} | {n} | {100 * named / n:.1f}% | {among} | "
              f"{100 * words / n:.1f}% |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "emoji-open")
