"""The commands that read results and never load a model (table, compare, findings, plot, report, leaderboard,
power): they start without torch and only read the harness home."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tabulate import tabulate

from harness.errors import HarnessError

log = logging.getLogger("harness")


def _results_frame(pattern: str = "*", rebuild: bool = False, split: str = "all"):
    """The runs of tasks matching ``pattern`` on ``split``: test, dev or all (records before splits are test)."""
    import fnmatch

    from harness import paths
    from harness.results.database import ResultsDB

    db = ResultsDB(readonly=not paths.writable_home())  # a read-only home is read, never written
    try:
        if rebuild:
            if db.readonly:
                raise HarnessError(f"--rebuild-index: the harness home {paths.home()} is read-only")
            log.info("results database rebuilt from the run folders: %d runs", db.rebuild())
        frame = db.frame()
    finally:
        db.close()
    if frame.empty:
        return frame
    # The pattern matches the task's name, or its label with a naming setting ("emoji-open 5-way").
    keep = [
        (fnmatch.fnmatchcase(t, pattern) or fnmatch.fnmatchcase(n, pattern)) and split in ("all", s)
        for t, n, s in zip(frame["task"], frame["task_name"], frame["split"])
    ]
    return frame[keep]


def cmd_table(args: argparse.Namespace) -> int:
    from harness.results import tables
    from harness.results.published import load_published

    published = None if args.no_published else load_published()
    frame = _results_frame(args.task, args.rebuild_index)
    _print_table(tables.comparison(frame, published), args.format)
    print("mean ± std over seeds (n = seeds); * = partial (--limit); published rows are the papers' own settings")
    for note in tables.corpus_notes(frame):
        print(note)
    return 0


def _print_table(table, fmt: str) -> None:
    from harness.results import escape

    if fmt == "csv":
        print(escape.csv_text(table, index=True), end="")
    elif fmt == "md":
        print(tabulate(escape.markdown_frame(table), headers="keys", tablefmt="github"))
    else:
        print(tabulate(table, headers="keys", tablefmt="latex"))


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.results import tables
    from harness.results.findings import check_alpha

    alpha = check_alpha(args.alpha)
    frame = _results_frame(args.task, split=args.split)
    found = tables.comparisons(frame, args.baseline, alpha)
    if args.format == "csv":
        from harness.results.escape import csv_text

        print(csv_text(found), end="")
    else:
        _print_table(tables.compare(frame, args.baseline, alpha), args.format)
    print(tables.compare_footer(found, alpha))
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    from harness import paths
    from harness.results import findings_table
    from harness.results.findings import check_alpha, findings_path, load_findings

    alpha = check_alpha(args.alpha)
    spec = load_findings(findings_path(args.findings))  # a bad file fails before the results are read
    if args.out and Path(args.out).is_dir():
        raise HarnessError(f"--out {args.out}: is a folder; name the file to write")
    table, notes = findings_table.measure(_results_frame(args.task, split=args.split), spec, alpha)
    text = findings_table.csv(table) if args.format == "csv" else findings_table.markdown(table, notes, alpha)
    if args.out:
        paths.atomic_write_text(Path(args.out), text)
        print(f"{args.out}: {len(table)} rows")
    else:
        print(text, end="")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:

    from harness.results.plots import plot_all

    for path in plot_all(_results_frame(args.task), _out_folder(args.out, "plots")):
        print(path)
    return 0


def _out_folder(value: str, what: str) -> Path:
    """An --out folder, checked before any work: a file of that name is refused, the folder made."""
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out}: is a file, not a folder; name a folder for {what} (it is made if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HarnessError(
            f"--out {out}: cannot be made ({err.strerror or err}); name a folder you can write"
        ) from None
    return out


def cmd_report(args: argparse.Namespace) -> int:

    from harness.results.report import build

    out = _out_folder(args.out, "the report's index.html and summary.md")
    print(build(_results_frame(args.task), out, args.baseline, args.samples))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:

    from harness import paths
    from harness.results import tables
    from harness.results.escape import csv_text

    if Path(args.csv).is_dir():
        raise HarnessError(
            f"--csv {args.csv}: is a folder; name the CSV file to write, e.g. {Path(args.csv) / 'leaderboard.csv'}"
        )
    board = tables.leaderboard(_results_frame(split=args.split))
    paths.atomic_write_text(Path(args.csv), csv_text(board))
    print(f"{args.csv}: {len(board)} rows")
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from harness.metrics.power import plan

    print(plan(args.effect, args.base, args.draws, args.alpha, args.power, args.metric), end="")
    return 0
