"""Run records: one folder per (model, task, settings) fingerprint.

``config.json`` (resolved settings), ``environment.json`` (versions, git commit, device),
``samples.jsonl`` (one line per query, appended and fsynced batch by batch, so a killed run keeps
every finished sample and resumes after them) and ``metrics.json`` once the run completes.

A run folder is read as untrusted input: a line of samples.jsonl, a metrics.json or a config.json that
cannot be read is one line naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from harness import __version__, paths
from harness.errors import HarnessError
from harness.results.records import RunRecord

log = logging.getLogger("harness")

# What to do about a run file that cannot be read: redo what depends on it, keep what does not.
RESCORE = "run the cell again (the same `harness run`): the saved samples are scored again, none is answered again"


def read_samples(path: Path, data: bytes | None = None) -> list[dict]:
    """The samples of a samples.jsonl, every line checked: a line that is not a JSON object with an ``id``
    is one line of error naming the file and the line. A last line without its newline (a kill mid-write)
    is not a sample yet and is left out."""
    raw = path.read_bytes() if data is None else data
    out = []
    for number, line in enumerate(raw[: raw.rfind(b"\n") + 1].splitlines(), 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            reason = "no 'id'"
        except ValueError as err:
            sample, reason = None, str(err).splitlines()[0]
        if not isinstance(sample, dict) or "id" not in sample:
            raise HarnessError(f"{path}:{number}: not a sample line ({reason}); delete that line (and metrics.json "
                               "beside it, if there is one) and run the cell again (the same `harness run`): that "
                               "query is answered again, every other sample is kept")  # fmt: skip
        out.append(sample)
    return out


def read_json(path: Path, advice: str) -> dict:
    """A run's JSON file as a mapping; unreadable, it is one line naming the file and ``advice``."""
    try:
        data = json.loads(path.read_bytes())
        reason = "not a JSON object"
    except (OSError, ValueError) as err:
        data, reason = None, (getattr(err, "strerror", None) or str(err)).splitlines()[0]
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: unreadable ({reason}); {advice}")
    return data


def _complete(sample: dict) -> bool:
    return "prediction" in sample or "skipped" in sample


class RunDir:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.samples_path = folder / "samples.jsonl"
        self.metrics_path = folder / "metrics.json"
        self.config_path = folder / "config.json"
        self.events_path = folder / "events.jsonl"  # what happened on the way (out of memory, skipped samples)

    def start(self, config: dict, computed: dict | None = None) -> None:
        """``computed``: how the model computes (its precision and why), recorded with the environment."""
        self.folder.mkdir(parents=True, exist_ok=True)
        paths.atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True))
        paths.atomic_write_text(
            self.folder / "environment.json", json.dumps({**environment(), **(computed or {})}, indent=2)
        )

    def finished_samples(self) -> list[dict]:
        """Samples already written; a torn last line (a kill mid-write) is cut off the file."""
        if not self.samples_path.exists():
            return []
        raw = self.samples_path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):
            with open(self.samples_path, "r+b") as f:
                f.truncate(end)
        return read_samples(self.samples_path, raw[:end])

    def resume(self) -> list[dict]:
        """The finished samples, one per id. A file holding an id more than once (the same run made by two
        processes at once, before runs took a lock) is rewritten atomically with the first complete line of
        each id, and a note says so."""
        samples = self.finished_samples()
        first: dict = {}
        for s in samples:
            if s["id"] not in first or (_complete(s) and not _complete(first[s["id"]])):
                first[s["id"]] = s
        if len(first) == len(samples):
            return samples
        kept = [s for s in samples if first[s["id"]] is s]
        paths.atomic_write_text(self.samples_path, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in kept))
        log.warning("note: %s held %d repeated sample lines (one run made twice at once); kept the first complete "
                    "line of each id", self.samples_path, len(samples) - len(kept))  # fmt: skip
        return kept

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
        paths.append_event(self.events_path, event)

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
        """The finished run's metrics.json, checked to be a run record; None before the run finished."""
        if not self.metrics_path.exists():
            return None
        data = read_json(self.metrics_path, f"delete it and {RESCORE}")
        self._record(data)
        return data

    def record(self) -> RunRecord | None:
        data = self.metrics()
        return None if data is None else self._record(data)

    def _record(self, data: dict) -> RunRecord:
        try:
            return RunRecord.from_json(data, self._config_or_nothing)
        except (ValueError, TypeError) as err:
            raise HarnessError(f"{self.metrics_path}: unreadable ({err}); delete it and {RESCORE}") from None

    def config(self) -> dict:
        """The run's config.json; unreadable, one line saying what to do (config.json is written again when
        the run is made again, and metrics.json is what says it was made)."""
        return read_json(self.config_path, f"delete metrics.json beside it and {RESCORE}")

    def _config_or_nothing(self) -> dict:
        """The run's config.json, or nothing where it cannot be read: what an old record's upgrade may consult."""
        try:
            return self.config()
        except HarnessError:
            return {}


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
