"""Naming accuracy for Frozen's open-ended protocol: exact match of the generated name.

The model continues "... Answer: This is a"; its answer is the generated text up to the first
period or newline (or the end, where generation stopped at EOS), stripped and lower-cased. It is
right when that equals the class name, also stripped and lower-cased: " dax." and "Dax\\n..." are
right for "dax"; "dax is" is not, nor is "blicket" (no partial or contained matches).
"""

from __future__ import annotations

import re

# Where the answer ends: a period or any line break (\n, \r, \v, \f, \x1c-\x1e, \x85, U+2028/9).
_END = re.compile(r"[.\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def extract_name(generated: str) -> str:
    """The answer part of a generation: up to the first period or line break, stripped, lower-cased."""
    if not isinstance(generated, str):
        return ""
    return _END.split(generated, maxsplit=1)[0].strip().lower()


def naming_accuracy(generated: str, name: str) -> float:
    """1.0 when the generated name is exactly ``name`` (case and outer spaces aside), else 0.0."""
    if not isinstance(name, str):
        return 0.0
    return 1.0 if extract_name(generated) == name.strip().lower() else 0.0
