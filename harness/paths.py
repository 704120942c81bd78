"""Where the harness keeps what it builds: converted LMs, checkpoints, datasets and runs.

Everything lives under one home folder (``$HARNESS_HOME``, default ``~/.cache/frozen-harness``)
so that a user can move or delete it as a unit; the repository itself stays small.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _home_set() -> str:
    """$HARNESS_HOME as set; empty (or blank, as an unset CI variable gives) counts as not set."""
    value = os.environ.get("HARNESS_HOME", "")
    return value if value.strip() else ""


def home() -> Path:
    """The home folder, always absolute: ``$HARNESS_HOME`` with ``~`` expanded and a relative one taken from the
    current folder (so the paths stored in run records and the results database stay valid from any folder);
    the default ``~/.cache/frozen-harness`` when it is unset or empty."""
    where = _home_set() or str(Path.home() / ".cache" / "frozen-harness")
    return Path(os.path.abspath(os.path.expanduser(where)))


def _home_named() -> str:
    where = home()
    if _home_set():
        return f"HARNESS_HOME {where}"
    return f"the harness home {where} (HARNESS_HOME names another)"


def writable_home() -> bool:
    """Whether this process can write in the home (made if missing); False for a home it cannot make."""
    where = home()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(where, os.W_OK | os.X_OK)


def check_home(write: bool = True) -> None:
    """The home, checked before a command starts: a folder (made if missing) that this process can write,
    else one line saying what is wrong. ``write=False`` (commands that only read results): a home that is
    read-only, or missing and cannot be made, is fine; one that is a file is not."""
    from harness.errors import HarnessError

    where = home()
    if where.exists() and not where.is_dir():
        raise HarnessError(f"{_home_named()}: is a file, not a folder; set HARNESS_HOME to a folder")
    if not write:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HarnessError(f"{_home_named()}: cannot be made ({err.strerror or err}); set HARNESS_HOME to a folder "
                           "you can write") from None  # fmt: skip
    if not os.access(where, os.W_OK | os.X_OK):
        raise HarnessError(f"{_home_named()}: is read-only; set HARNESS_HOME to a folder you can write (table, "
                           "compare, leaderboard, plot and report can read a read-only home)")  # fmt: skip


def subdir(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so big weight files are hashed once."""
    stat = path.stat()
    index_path = subdir("hashes") / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        index = {}
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in index:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        index[key] = digest.hexdigest()
        atomic_write_text(index_path, json.dumps(index, indent=1))
    return index[key]


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: readers never see half a file.

    A failed write (a full disk) leaves the old file as it was and raises a one-line HarnessError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_error(path, err) from None


def write_error(path: Path, err: OSError):
    from harness.errors import HarnessError

    return HarnessError(
        f"{path}: could not write ({err.strerror or err}); everything finished before is kept: "
        "free the space and run the same command again to resume"
    )


def fingerprint(obj: object) -> str:
    """A short stable hash of a JSON-able description (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def append_event(path: Path, event: dict) -> None:
    """One timestamped line in an events.jsonl (what happened on the way: out of memory, skipped samples)."""
    from datetime import datetime, timezone

    line = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
