"""The model interface: what any model implements to be evaluated by the harness.

Every task, few-shot mode, table, plot and report works for a model that has this one method::

    class MyModel:
        name = "my-model"   # optional: its name in tables (default: the class name); an instance may set its own

        def generate(self, prompts, max_new_tokens, stop):
            # prompts: a list of prompts; each a list of segments in order, every segment either a str
            #   or a harness.prompt.Image (``.key``: a name for logs; ``.pixels``: uint8 H x W x 3 tensor).
            # Return one str per prompt: the greedy continuation, at most max_new_tokens tokens; text
            # from the first of the ``stop`` strings on may be kept (the harness cuts it off).
            ...

and may add:

- ``loglikelihood(prompts, continuations) -> list[float]``: the summed log-probability of each
  continuation's tokens given its prompt (naming tasks with ``--task-set answer=rank`` need it);
- ``context_length() -> int | None`` and ``prompt_lengths(prompts) -> list[int]``: positions the
  model can attend to and each prompt's length in them, so that a prompt too long for the model is one
  line before anything runs, naming how many shots fit;
- ``identity() -> str | dict``: what, beyond its source file and constructor arguments, decides its
  answers (a weights hash, a version): part of its fingerprint, so changed weights never reuse answers;
- ``to(device)``: called with the run's device (``--device``) when present.

``harness.models.prefix.VisualPrefixModel`` and the Hugging Face adapter (``hf:`` models) implement all
of it. A model is named on the command line as ``path/to/file.py:ClassName``, by a Python entry point
in the group ``frozen_harness.models`` (its name), or ``hf:<hub id or folder>``; ``--set key=value``
passes constructor keyword arguments (see ``harness.models.external``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from harness.prompt import Prompt

ENTRY_POINT_GROUP = "frozen_harness.models"


@runtime_checkable
class HarnessModel(Protocol):
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str]) -> list[str]: ...


def context_length(model) -> int | None:
    """The model's context in positions, when it says (``context_length()``); None: not checked."""
    method = getattr(model, "context_length", None)
    return method() if callable(method) else None


def prompt_lengths(model, prompts: Sequence[Prompt]) -> list[int] | None:
    method = getattr(model, "prompt_lengths", None)
    return method(prompts) if callable(method) else None
