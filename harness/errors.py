"""The one user-facing error type: the CLI prints it as a single line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Bad input or a missing resource, explained in one line for the user.

    The message is always one line (``Missing``'s: a header line and one per thing): any line breaks in it (from
    a file name, a value quoted from a data file, or a third-party error text) are shown as `` | ``.
    """

    def __str__(self) -> str:
        text = super().__str__()
        lines = text.splitlines()
        if len(lines) > 1:
            return " | ".join(line.strip() for line in lines if line.strip())
        return text


class Missing(HarnessError):
    """Several things a command needs that are not on this machine, found before it started: a header line, then
    one line per thing (each made one line as any HarnessError's message is)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [str(HarnessError(p)) for p in problems]
        super().__init__(f"cannot start: {len(self.problems)} things are missing")

    def __str__(self) -> str:
        return f"cannot start: {len(self.problems)} things are missing:" + "".join(f"\n  - {p}" for p in self.problems)


class BadImage(HarnessError):
    """An image that cannot be used: missing, unreadable, undecodable, or too large to decode safely.

    ``source`` names where the image came from (a file path, or a table cell such as "hub dataset X
    image 'val/42'") and ``reason`` says what is wrong with it. The evaluator can catch this per
    sample (``--skip-bad-samples``), skip and count; by default it stops the run as any HarnessError.
    """

    def __init__(self, source: object, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def shown(name: object) -> str:
    """A name for a message: quoted, and escaped where it holds control or non-printable characters."""
    text = str(name)
    return f"'{text}'" if text.isprintable() else repr(text)


def unknown_name(kind: str, name: str, known: Iterable[str]) -> HarnessError:
    """An error for an unknown registry name that lists the closest known names."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    return HarnessError(f"unknown {kind} {shown(name)}{hint}")
