"""One process at a time in a folder: a run folder is evaluated, a checkpoint folder trained, by one process.

The lock is ``filelock``'s native lock (``flock``) on ``<folder>/.lock``. The operating system lets go of it
when its holder exits, however it exits (a kill -9 included), so a lock is never left behind for a user to
delete. The holder writes its pid into the file, for the message of a process that waits. A process that
finds the folder locked says so once on stderr and waits; it then finds the work done (the run's
metrics.json, the trained checkpoint) and reads it back instead of doing it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from harness.errors import HarnessError

log = logging.getLogger("harness")

LOCK_FILE = ".lock"
_HELD: set[str] = set()  # folders this process holds: taken again inside, it is already ours


def holder(path: Path) -> str:
    """The pid written in a lock file, or 'another process' when it cannot be read."""
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def _write_pid(fd: int) -> None:
    with contextlib.suppress(OSError):  # the pid is for messages only
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


@contextlib.contextmanager
def held(folder: Path, enabled: bool = True) -> Iterator[None]:
    """Hold the lock on ``folder`` (created if missing) for the ``with`` block, waiting for it if another
    process holds it. ``enabled=False`` (a rank other than 0 of a launch of several processes) takes none."""
    key = str(Path(folder).resolve())
    if not enabled or key in _HELD:
        yield
        return
    path = Path(folder) / LOCK_FILE
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        lock = FileLock(path, preserve_lock_file=True, on_acquired=_write_pid)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            log.warning("waiting for the lock on %s held by %s", folder, holder(path))
            lock.acquire()
    except OSError as err:
        raise HarnessError(f"{path}: could not create the lock file ({err.strerror or err})") from None
    _HELD.add(key)
    try:
        yield
    finally:
        _HELD.discard(key)
        lock.release()
