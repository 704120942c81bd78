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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from harness.errors import HarnessError
from harness.prompt import Prompt

ENTRY_POINT_GROUP = "frozen_harness.models"


@runtime_checkable
class HarnessModel(Protocol):
    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str]) -> list[str]: ...


def context_length(model) -> int | None:
    """The model's context in positions, when it says (``context_length()``); None: not checked."""
    method = getattr(model, "context_length", None)
    if not callable(method):
        return None
    with guarded(model, "context_length"):
        return method()


def prompt_lengths(model, prompts: Sequence[Prompt]) -> list[int] | None:
    method = getattr(model, "prompt_lengths", None)
    if not callable(method):
        return None
    with guarded(model, "prompt_lengths"):
        return method(prompts)


def raised(err: BaseException) -> str:
    """An exception as one short phrase: its type and message (``SystemExit: 0``)."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def model_name(model) -> str:
    """The name a model goes by in messages: its own ``name``, else its class's name."""
    name = getattr(model, "name", None)
    return name.strip() if isinstance(name, str) and name.strip() else type(model).__name__


@contextmanager
def guarded(model, method: str, passing: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run a model's method: anything it raises or exits with (``SystemExit`` of any code included) becomes one
    HarnessError naming the model, the method and the exception, so that the command fails (exit status 2) and
    never ends quietly having evaluated nothing. Ctrl-C (KeyboardInterrupt), a HarnessError and the types in
    ``passing`` (out of memory, which the caller handles) go through as they are."""
    try:
        yield
    except (KeyboardInterrupt, HarnessError, *passing):
        raise
    except BaseException as err:
        raise HarnessError(f"model {model_name(model)}: {method} raised {raised(err)} (--debug shows the "
                           "traceback)") from err  # fmt: skip
