"""Run records: one folder per (model, task, settings) fingerprint.

``config.json`` (resolved settings), ``environment.json`` (versions, git commit, device),
``samples.jsonl`` (one line per query, appended and fsynced batch by batch, so a killed run keeps
every finished sample and resumes after them) and ``metrics.json`` once the run completes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from harness import __version__, paths
from harness.kinds.naming import RANKED, SETTING, naming_label
from harness.records import RunRecord


def append_event(path: Path, event: dict) -> None:
    """One timestamped line in an events.jsonl (what happened on the way: out of memory, skipped samples)."""
    from datetime import datetime, timezone

    line = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


class RunDir:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.samples_path = folder / "samples.jsonl"
        self.metrics_path = folder / "metrics.json"
        self.events_path = folder / "events.jsonl"  # what happened on the way (out of memory, skipped samples)

    def start(self, config: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        paths.atomic_write_text(self.folder / "config.json", json.dumps(config, indent=2, sort_keys=True))
        paths.atomic_write_text(self.folder / "environment.json", json.dumps(environment(), indent=2))

    def finished_samples(self) -> list[dict]:
        """Samples already written; a torn last line (a kill mid-write) is cut off the file."""
        if not self.samples_path.exists():
            return []
        raw = self.samples_path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            with open(self.samples_path, "r+b") as f:
                f.truncate(end)
        return [json.loads(line) for line in raw[:end].splitlines() if line.strip()]

    def append(self, samples: Iterable[dict]) -> None:
        """Append whole lines; a write cut short (a full disk) is cut back to the last whole line."""
        data = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples).encode()
        fd = os.open(self.samples_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise paths.write_error(self.samples_path, err) from None
        finally:
            os.close(fd)

    def event(self, event: dict) -> None:
        append_event(self.events_path, event)

    def events(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        return [json.loads(x) for x in self.events_path.read_text().splitlines() if x.strip().endswith("}")]

    def rewrite_samples(self, samples: Iterable[dict]) -> None:
        """Replace samples.jsonl whole (atomically): for scores known only once every sample is in.
        The records of skipped samples (--skip-bad-samples) stay."""
        skipped = [s for s in self.finished_samples() if "skipped" in s]
        text = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in [*samples, *skipped])
        paths.atomic_write_text(self.samples_path, text)

    def write_metrics(self, metrics: dict) -> None:
        paths.atomic_write_text(self.metrics_path, json.dumps(metrics, indent=2, sort_keys=True))

    def metrics(self) -> dict | None:
        return json.loads(self.metrics_path.read_text()) if self.metrics_path.exists() else None


def environment() -> dict:
    import torch
    import transformers

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "harness": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        # what changes CPU floats, so trained weights and answers, between machines (see `harness check`)
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
    }


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
    metrics_json TEXT
)
"""


class ResultsDB:
    """The index of finished runs: an SQLite file in WAL mode, safe when two runs finish at once.

    A run is keyed by its folder's fingerprint: indexing the same run again changes nothing, and a
    run with other settings is another row. Only `harness score` replaces a row, and says so.
    """

    def __init__(self, path: Path | None = None) -> None:
        import sqlite3

        self.path = path or paths.home() / "results.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def _row(self, run_dir: Path, record: RunRecord, config: dict) -> dict:
        """The database row of a run, by column name."""
        from datetime import datetime, timezone

        return {
            "run_key": run_dir.name, "run_dir": str(run_dir), "task": record.task,
            "task_version": config.get("task_version"), "task_fingerprint": config.get("task_fingerprint"),
            "model": record.model, "lm": config["model"]["lm"], "recipe": config["model"]["recipe"]["name"],
            "model_fingerprint": record.model_fingerprint, "shots": record.shots, "seed": record.seed,
            "images": record.images, "metric": record.metric, "score": record.score, "ci_low": record.ci95[0],
            "ci_high": record.ci95[1], "n": record.n, "partial": int(bool(record.partial)),
            "harness_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics_json": json.dumps(record.to_json(), sort_keys=True),
        }  # fmt: skip

    def index(self, run: RunDir, replace: bool = False) -> None:
        record = RunRecord.from_json(run.metrics())
        config = json.loads((run.folder / "config.json").read_text())
        row = self._row(run.folder, record, config)
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._db:
            self._db.execute(f"{verb} INTO runs ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)

    def frame(self):
        import pandas as pd

        frame = pd.read_sql_query("SELECT * FROM runs", self._db)
        metrics = [json.loads(m) for m in frame["metrics_json"]]
        # --limit N evaluates other questions than a full run: never averaged together.
        frame["limit"] = [m.get("limit", 0) for m in metrics]
        frame["skipped"] = [m.get("skipped", 0) for m in metrics]  # queries skipped for unreadable images
        # Models that differ only in their training seed are one row, their seeds pooled as seeds.
        frame["model_family"] = [m.get("model_family") or f for m, f in zip(metrics, frame["model_fingerprint"])]
        frame["train_seed"] = [m.get("train_seed") for m in metrics]
        # Generated naming episodes: 2-way and 5-way (or with induction) are different tasks in every table.
        setting = [_naming_setting(m, d) for m, d in zip(metrics, frame["run_dir"])]
        frame["task_name"] = frame["task"]
        for i, key in enumerate(SETTING):
            frame[key] = [s[i] if s else None for s in setting]
        frame["answer"] = [m.get("answer", "generate") for m in metrics]  # naming by ranking names is another task
        # Records since the label was written keep it; older ones are labelled as it would have been.
        frame["task"] = [m.get("task_label") or (naming_label(t, *s) if s else t) + (RANKED if a == "rank" else "")
                         for m, t, s, a in zip(metrics, frame["task"], setting, frame["answer"])]  # fmt: skip
        # One row per cell and seed: a run recorded again under a newer record format replaces the old.
        keys = ["model", "model_fingerprint", "images", "task", "task_fingerprint", "shots", "limit", "seed"]
        return frame.sort_values("created", kind="stable").drop_duplicates(keys, keep="last").reset_index(drop=True)

    def close(self) -> None:
        self._db.close()


def _naming_setting(metrics: dict, run_dir: str) -> tuple | None:
    """(ways, repeats, induction) of a run on generated naming episodes, else None. Records written
    before the setting was part of metrics.json have it in their config.json."""
    if all(k in metrics for k in SETTING):
        return tuple(metrics[k] for k in SETTING)
    if metrics.get("metric") != "naming accuracy":
        return None
    try:
        task = json.loads((Path(run_dir) / "config.json").read_text())["task_config"]
    except (OSError, ValueError, KeyError):
        return None
    options = task.get("options") or {}
    if task.get("source") == "frozen-episodes" or "ways" not in options:
        return None
    return options["ways"], options.get("repeats", 1), bool(options.get("induction", False))
