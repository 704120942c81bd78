"""Few-shot support drawn per query with an RNG seeded by (task, seed, query id).

The prompts are therefore the same whatever the batch size, device count or evaluation order, and a
query never appears in its own support (neither the same row nor another question on its image).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from harness.data.types import Row
from harness.errors import HarnessError


def draw_support(task: str, seed: int, query: Row, pool: Sequence[Row], shots: int) -> list[Row]:
    if shots == 0:
        return []
    # A str seed is hashed with sha512 by `random`, independent of PYTHONHASHSEED.
    rng = random.Random(f"{task}|{seed}|{query.id}")
    chosen: list[Row] = []
    images = {query.image}
    for index in rng.sample(range(len(pool)), len(pool)):
        row = pool[index]
        if row.id != query.id and row.image not in images:
            chosen.append(row)
            images.add(row.image)
            if len(chosen) == shots:
                return chosen
    raise HarnessError(f"task {task}: the support pool has fewer than {shots} usable examples for query {query.id}")
