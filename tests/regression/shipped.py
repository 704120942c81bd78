"""The shipped run records of a results page, extracted into a harness home of their own."""

from __future__ import annotations

import tarfile
from pathlib import Path


def extract_runs(archive: Path, home: Path) -> Path:
    """The run folders of ``archive`` (a results/*-runs.tar.xz) under ``home``, the archive's file times (the
    leaderboard's date column) kept; nothing else of it."""
    with tarfile.open(archive) as tar:
        runs = [member for member in tar.getmembers() if member.name.split("/")[0] == "runs"]
        # Python 3.12 warns without a filter; 3.10 and early 3.11 have none.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(home, members=runs, **safe)
    return home
