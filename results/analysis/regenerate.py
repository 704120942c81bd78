"""Rewrite every marked table of a results page from the run records of the current harness home.

A page marks a table with the command that prints it:

    <!-- regenerate: harness findings -->
    | ... the command's output ... |
    <!-- /regenerate -->

This runs each command (``harness ...`` or ``python results/analysis/...``) and puts its output between the
markers; tests/regression/test_frozen_mini_document.py checks that the page and its records agree.

    HARNESS_HOME=<home with the page's records> python results/analysis/regenerate.py results/frozen-mini.md
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

BLOCK = re.compile(r"(<!-- regenerate: (?P<command>.+?) -->\n)(?P<body>.*?)(<!-- /regenerate -->)", re.DOTALL)


def output(command: str, cwd: Path | None = None) -> str:
    """What ``command`` prints, run from ``cwd`` (the repository, where the page's commands are written from)."""
    args = shlex.split(command)
    if args[0] == "harness":
        args = [sys.executable, "-m", "harness", *args[1:]]
    elif args[0] == "python":
        args = [sys.executable, *args[1:]]
    else:
        raise SystemExit(f"not a command to regenerate a table with: {command}")
    return subprocess.run(args, capture_output=True, text=True, check=True, cwd=cwd).stdout.strip() + "\n"


def main(page: Path) -> None:
    text = page.read_text()
    repo = Path(__file__).resolve().parents[2]
    page.write_text(BLOCK.sub(lambda m: m.group(1) + output(m["command"], repo) + m.group(4), text))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
