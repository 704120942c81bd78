"""The results database: an index of finished runs (SQLite), rebuilt from the run folders when it cannot be
read or no longer matches them. The run folders (``harness.results.rundir``) are the record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from harness import __version__, paths
from harness.errors import HarnessError
from harness.kinds.base import cell_label
from harness.results.records import RunRecord
from harness.results.rundir import RESCORE, RunDir

log = logging.getLogger("harness")


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY,
    run_dir TEXT NOT NULL,
    task TEXT NOT NULL,
    task_version INTEGER,
    task_fingerprint TEXT,
    model TEXT NOT NULL,
    lm TEXT,
    recipe TEXT,
    model_fingerprint TEXT,
    shots INTEGER,
    seed INTEGER,
    images TEXT,
    metric TEXT,
    score REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    partial INTEGER,
    harness_version TEXT,
    created TEXT,
    metrics_json TEXT,
    kind TEXT,
    cell_settings TEXT,
    split TEXT,
    baselines TEXT
)
"""
# Columns added since the first schema: a database made before them gets them, empty (``_kind_and_settings``; split
# and baselines are read from the record where their column is empty).
_ADDED = {"kind": "TEXT", "cell_settings": "TEXT", "split": "TEXT", "baselines": "TEXT"}


class ResultsDB:
    """The index of finished runs: an SQLite file in WAL mode, safe when two runs finish at once.

    A run is keyed by its folder's fingerprint: indexing the same run again changes nothing, and a
    run with other settings is another row. Only `harness score` replaces a row, and says so.

    It is an index, not the record (the run folders are): a file that is not a readable SQLite database is
    moved aside and rebuilt from the run folders, saying so; ``readonly`` (a home this user cannot write)
    opens it read-only, or indexes the run folders in memory when there is no readable file.
    """

    def __init__(self, path: Path | None = None, readonly: bool = False) -> None:
        import sqlite3

        self.path = path or paths.home() / "results.sqlite"
        self.readonly = readonly
        try:
            self._db = self._connect_readonly() if readonly else self._connect()
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as err:  # not SQLite at all, or damaged
            self._db = self._replace_unreadable(err)

    def _connect(self):
        import sqlite3

        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=60)
        try:
            self._set_up(db)
            db.execute("SELECT COUNT(*) FROM runs").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @staticmethod
    def _set_up(db, patience: float = 60.0) -> None:
        """WAL mode and the schema. Switching to WAL takes an exclusive lock and SQLite answers "database is
        locked" at once, without waiting, while another process creates or switches the same file: so that
        is retried, for up to ``patience`` seconds. WAL mode stays with the file, so it is switched once."""
        import sqlite3
        import time

        deadline = time.monotonic() + patience
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute(SCHEMA)
                have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
                for column, sql_type in _ADDED.items():
                    if column not in have:
                        db.execute(f"ALTER TABLE runs ADD COLUMN {column} {sql_type}")
                db.commit()
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                db.rollback()
                time.sleep(0.05)

    def _connect_readonly(self):
        import sqlite3

        if self.path.is_file():
            for options in ("mode=ro", "immutable=1"):  # immutable: a WAL database whose -shm cannot be made
                try:
                    db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{options}", uri=True, timeout=60)
                    db.execute("SELECT COUNT(*) FROM runs").fetchone()
                    return db
                except sqlite3.OperationalError:
                    continue
                except sqlite3.DatabaseError as err:
                    log.warning("note: %s is not a readable SQLite database (%s); the tables come from the run "
                                "folders (this read-only home is left as it is)", self.path, err)  # fmt: skip
                    break
        return self._in_memory()

    def _in_memory(self):
        """An index of the run folders, in memory: for a home that cannot be written."""
        import sqlite3

        self._db = sqlite3.connect(":memory:")
        self._db.execute(SCHEMA)
        self.rebuild()
        return self._db

    def _replace_unreadable(self, err: Exception):
        aside = self.path.with_name(self.path.name + ".unreadable")
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it already
            os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self._db = self._connect()
        count = self.rebuild()
        log.warning("note: %s was not a readable SQLite database (%s): moved to %s, and the index rebuilt from "
                    "the run folders (%d runs)", self.path, err, aside.name, count)  # fmt: skip
        return self._db

    def _row(self, run_dir: Path, record: RunRecord, config: dict, created: str | None = None) -> dict:
        """The database row of a run, by column name."""
        from datetime import datetime, timezone

        created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        return {
            "run_key": run_dir.name, "run_dir": str(run_dir), "task": record.task,
            "task_version": config.get("task_version"), "task_fingerprint": config.get("task_fingerprint"),
            "model": record.model, "lm": config["model"]["lm"], "recipe": config["model"]["recipe"]["name"],
            "model_fingerprint": record.model_fingerprint, "shots": record.shots, "seed": record.seed,
            "images": record.images, "metric": record.metric, "score": record.score, "ci_low": record.ci95[0],
            "ci_high": record.ci95[1], "n": record.n, "partial": int(bool(record.partial)),
            "harness_version": __version__, "created": created,
            "metrics_json": json.dumps(record.to_json(), sort_keys=True), "kind": record.kind,
            "cell_settings": json.dumps(record.cell_settings, sort_keys=True), "split": record.split or "test",
            "baselines": json.dumps(record.baselines, sort_keys=True),
        }  # fmt: skip

    def _row_of(self, run: RunDir, created: str | None = None) -> dict:
        record = run.record()
        if record is None:
            raise HarnessError(f"{run.folder}: not a finished run (no metrics.json)")
        config = run.config()
        try:
            return self._row(run.folder, record, config, created)
        except (KeyError, TypeError) as err:
            raise HarnessError(f"{run.config_path}: unreadable (no {err}); delete metrics.json beside it and "
                               f"{RESCORE}") from None  # fmt: skip

    def _insert(self, row: dict, verb: str) -> None:
        self._db.execute(f"{verb} INTO runs ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)

    def index(self, run: RunDir, replace: bool = False) -> None:
        row = self._row_of(run)
        with self._db:
            self._insert(row, "INSERT OR REPLACE" if replace else "INSERT OR IGNORE")

    def rebuild(self) -> int:
        """Make the index match the run folders: every finished run under ``$HARNESS_HOME/runs`` indexed
        (dated by its metrics.json), rows of folders that are gone dropped; a run whose record cannot be read
        is left out, with a note. Returns the number of runs indexed."""
        from datetime import datetime, timezone

        rows = []
        for metrics in sorted((paths.home() / "runs").glob("**/metrics.json")):
            mtime = datetime.fromtimestamp(metrics.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            try:
                rows.append(self._row_of(RunDir(metrics.parent), created=mtime))
            except HarnessError as err:
                log.warning("note: left out of the index: %s", err)
        with self._db:
            self._db.execute("DELETE FROM runs")
            for row in rows:
                self._insert(row, "INSERT OR REPLACE")
        return len(rows)

    def frame(self):
        import pandas as pd

        from harness.results.tasklabels import distinguish

        frame = pd.read_sql_query("SELECT * FROM runs", self._db)
        # An index, not the record: a run whose folder is gone is left out, saying so.
        gone = [not (Path(d) / "metrics.json").is_file() for d in frame["run_dir"]]
        if any(gone):
            first = frame["run_dir"][gone.index(True)]
            log.warning("note: %d run(s) in the results database have no run folder any more (first: %s), left "
                        "out; `harness table --rebuild-index` makes the database match the run folders",
                        sum(gone), first)  # fmt: skip
            frame = frame[[not g for g in gone]].reset_index(drop=True)
        metrics = [json.loads(m) for m in frame["metrics_json"]]
        # --limit N evaluates other questions than a full run: never averaged together.
        frame["limit"] = [m.get("limit", 0) for m in metrics]
        frame["skipped"] = [m.get("skipped", 0) for m in metrics]  # queries skipped for unreadable images
        frame["all_empty"] = [RunRecord.from_json(m).all_empty for m in metrics]  # a model that said nothing
        # Models that differ only in their training seed are one row, their seeds pooled as seeds.
        frame["model_family"] = [m.get("model_family") or f for m, f in zip(metrics, frame["model_fingerprint"])]
        frame["train_seed"] = [m.get("train_seed") for m in metrics]
        # A kind's cell settings (naming's ways, induction, answer mode) make other tasks in every table.
        frame["kind"], frame["cell_settings"] = _kind_and_settings(frame, metrics)
        frame["task_name"] = frame["task"]
        # Records since the label was written keep it; older ones are labelled as their kind labels them.
        frame["task"] = [m.get("task_label") or cell_label(k, t, c)
                         for m, t, k, c in zip(metrics, frame["task"], frame["kind"], frame["cell_settings"])]  # fmt: skip
        # Runs on the dev split (for tuning) are cells of their own, labelled; no-model baselines ride with their run.
        frame["split"] = [m.get("split") or "test" for m in metrics]
        # One cell is one task fingerprint: runs of a label (and split) under other task settings or data say what
        # differs.
        frame["task"] = distinguish(frame)
        frame["baselines"] = [m.get("baselines") or {} for m in metrics]
        frame["precision"] = [m.get("precision") or "" for m in metrics]
        frame["task"] = [t + (" [dev]" if s == "dev" else "") for t, s in zip(frame["task"], frame["split"])]
        # One row per cell and seed: a run recorded again under a newer record format replaces the old.
        keys = ["model", "model_fingerprint", "images", "task", "task_fingerprint", "shots", "limit", "seed"]
        return frame.sort_values("created", kind="stable").drop_duplicates(keys, keep="last").reset_index(drop=True)

    def close(self) -> None:
        self._db.close()


def _kind_and_settings(frame, metrics: list[dict]) -> tuple[list[str], list[dict]]:
    """Each run's kind and cell settings, from their columns; a row indexed before they were columns has its run's
    record read again, which upgrades it (``harness.results.records.upgrade``)."""
    kinds, settings = [], []
    columns = (frame[c] if c in frame else [None] * len(frame) for c in ("kind", "cell_settings"))
    for kind, cell, run_dir, metric in zip(*columns, frame["run_dir"], metrics):
        if isinstance(kind, str) and isinstance(cell, str):
            kinds.append(kind)
            settings.append(json.loads(cell))
            continue
        try:
            record = RunDir(Path(run_dir)).record() or RunRecord.from_json(metric)
        except HarnessError:
            record = RunRecord.from_json(metric)
        kinds.append(record.kind)
        settings.append(record.cell_settings)
    return kinds, settings
