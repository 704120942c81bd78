"""The fixed texts of Frozen's naming protocol (Tsimpoukelli et al. 2021, section 4.3): its nonsense names and
the sentences around the images. Here, under ``harness.data``, so that the sources that read or write naming
episodes (``harness.data.folders``, ``harness.data.tiny_folders``) and the naming kind (``harness.kinds.naming``)
share one copy, and data never imports a task kind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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

_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")


def display_name(class_name: str) -> str:
    """A class's real name as written in the prompt: underscores become spaces ("golden_retriever")."""
    return " ".join(class_name.replace("_", " ").split())


def class_description(class_name: str) -> str:
    """A class folder's name as a short description, "a red circle." for ``red_circle`` ("an" before a vowel),
    when every word of its ``display_name`` is letters (an inner hyphen or apostrophe allowed); else "": a name
    such as miniImageNet's WordNet ids (``n01532829``), or any with digits, describes nothing."""
    name = display_name(class_name)
    if not name or not all(_WORD.fullmatch(word) for word in name.split()):
        return ""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}."


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
