"""The one user-facing error type: the CLI prints it as a single line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Bad input or a missing resource, explained in one line for the user."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> HarnessError:
    """An error for an unknown registry name that lists the closest known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    return HarnessError(f"unknown {kind} '{name}'{hint}")
