"""Does a trained model's image prefix tell naming concepts apart, whatever the LM does with it? For each episode
of a naming run, the query image is matched to the support image closest by cosine, once on the encoder's pooled
features and once on the prefix (all n_prefix vectors, flattened); the score is how often that support image
carries the query's name. An LM that binds names to images in context can do no better than its prefix does here.

    HARNESS_HOME=<home> python results/analysis/prefix_retrieval.py RUN_FOLDER MODEL [MODEL ...]

RUN_FOLDER: a naming run of the emoji-open task (its samples give the episodes); MODEL: a trained model's registry
name, or NAME:untrained for the model as built (the ImageNet encoder, an untrained map).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import registry
from harness.evaluation import tasks
from harness.models.loading import build, load_trained
from harness.models.spec import resolve

SUPPORT = re.compile(r"<image:([^>]+)>This is an? ([^.<]+)\.")
QUERY = re.compile(r"<image:([^>]+)>Question")


def main(run: Path, models: list[str]) -> None:
    dataset = tasks.load(registry.TASKS.get("emoji-open"))
    episodes = []
    for line in (run / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        episodes.append(
            (QUERY.findall(sample["prompt"])[0], SUPPORT.findall(sample["prompt"]), sample["references"][0])
        )
    for name in models:
        spec = resolve(name.split(":")[0], {})
        model = build(spec, "cpu").eval() if name.endswith(":untrained") else load_trained(spec, "cpu")
        if model is None:
            raise SystemExit(f"{name}: no trained checkpoint in this home")
        hits = {"encoder features": 0, "prefix": 0}
        with torch.no_grad():
            for query, support, answer in episodes:
                features = model.encoder(
                    model.preprocess([dataset.image(k) for k in [query] + [k for k, _ in support]])
                )
                for what, vectors in (("encoder features", features), ("prefix", model.prefix_map(features))):
                    closest = int(F.cosine_similarity(vectors[:1], vectors[1:]).argmax())
                    hits[what] += support[closest][1].strip().lower() == answer.strip().lower()
        shares = ", ".join(f"{what} {100 * n / len(episodes):.1f}%" for what, n in hits.items())
        print(f"{name}: {shares} of {len(episodes)} episodes ({len(episodes[0][1])} support images each)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(Path(sys.argv[1]), sys.argv[2:])
