"""Text from users (model, task and finding names) made safe for the tables the harness writes.

- CSV (``leaderboard``, ``table``/``compare``/``findings --format csv``): a text cell that a spreadsheet would
  run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
  apostrophe, as OWASP advises against CSV injection; numbers, negative ones included (``-3.5``), and text that
  reads as a number stay as they are.
- Markdown (every GitHub table the harness prints or writes): ``|`` becomes ``\\|`` and line breaks become
  spaces, so a name cannot end a cell or add a row.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula; anything but non-numeric text is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _number(value):
        return "'" + value
    return value


def markdown_cell(value: Any) -> Any:
    """A Markdown table cell that stays one cell of one row; anything but text is returned as it is."""
    if isinstance(value, str):
        return _LINE_BREAKS.sub(" ", value).replace("|", "\\|")
    return value


def _each(frame: pd.DataFrame, cell) -> pd.DataFrame:
    """A copy of the frame with ``cell`` applied to every text value, row label and column label."""
    frame = frame.rename(index=cell, columns=cell)
    frame.index = frame.index.set_names([cell(n) for n in frame.index.names])
    frame.columns = frame.columns.set_names([cell(n) for n in frame.columns.names])
    for i in range(frame.shape[1]):
        if pd.api.types.is_object_dtype(frame.iloc[:, i]) or pd.api.types.is_string_dtype(frame.iloc[:, i]):
            frame.isetitem(i, frame.iloc[:, i].map(cell))
    return frame


def csv_text(frame: pd.DataFrame, index: bool = False) -> str:
    """``frame.to_csv`` with every text cell (and label) safe to open in a spreadsheet."""
    return _each(frame, csv_cell).to_csv(index=index)


def markdown_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell (and label) safe in a Markdown table."""
    return _each(frame, markdown_cell)


def markdown_rows(rows: list[list]) -> list[list]:
    """Table rows (lists of cells) with every text cell safe in a Markdown table."""
    return [[markdown_cell(v) for v in row] for row in rows]
