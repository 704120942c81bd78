"""Nothing wedged (issue 16): runs and trainings take a lock, so two identical commands at once end with one
whole run; a run folder left with repeated samples is repaired on resume; a line of samples.jsonl, a
metrics.json or a config.json that cannot be read is one line naming the file and what to do, and doing it
works. Nothing recorded is lost or changed on the way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import locks
from harness.cli.main import main
from tests.robustness.conftest import FAST_SETS, cli_error, recorded

REPO = Path(__file__).resolve().parents[2]
RUN = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--quiet", "--limit", "8",
       "--batch-size", "4", *FAST_SETS]  # fmt: skip


def ok(capsys, args: list[str]) -> str:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return out


def only_run(home: Path) -> Path:
    [metrics] = list((home / "runs").rglob("samples.jsonl"))
    return metrics.parent


@pytest.mark.slow
def test_two_identical_runs_at_once_end_with_one_whole_run(tiny_hub, tmp_path):
    """Two `harness run` processes started together on a fresh home: one trains and evaluates, the other waits
    for its locks and reads the results back; both exit 0 and the run folder has one line per id."""
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "harness", "run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images",
            "real", "--limit", "40", "--batch-size", "2", "--quiet", *FAST_SETS, "--set", "seed=61"]  # fmt: skip
    logs = [tmp_path / f"stderr-{i}.txt" for i in range(2)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w")) for log in logs]
    codes = [p.wait(timeout=600) for p in procs]
    errs = [log.read_text() for log in logs]
    assert codes == [0, 0], errs
    assert not any("Traceback" in e for e in errs), errs
    folder = only_run(home)
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == len({s["id"] for s in samples}) == 40
    assert json.loads((folder / "metrics.json").read_text())["n"] == 40
    print("waited:", [("waiting for the lock" in e) for e in errs])  # which process waited, for the record


HOLD = """
import sys, time
from pathlib import Path
from harness import locks
with locks.held(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lock_is_waited_for_naming_its_holder_and_let_go_when_the_holder_is_killed(tmp_path, caplog):
    folder = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        got = threading.Event()

        def take() -> None:
            with locks.held(folder):
                got.set()

        waiter = threading.Thread(target=take)
        waiter.start()
        time.sleep(1.0)
        assert not got.is_set()
        assert f"waiting for the lock on {folder} held by pid {holder.pid}" in caplog.text
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # killed: the operating system lets go of its lock
        holder.wait()
    waiter.join(timeout=30)
    assert got.is_set()


def test_repeated_sample_lines_are_repaired_on_resume(home, capsys, caplog):
    ok(capsys, RUN)
    folder = only_run(home)
    lines = (folder / "samples.jsonl").read_text().splitlines(keepends=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    # What two processes running one cell at once left before runs took a lock: lines appended twice.
    (folder / "metrics.json").unlink()
    (folder / "samples.jsonl").write_text("".join(lines[:6] + lines[2:5] + lines[6:] + lines[:1]))
    ok(capsys, RUN)
    assert "held 4 repeated sample lines" in caplog.text
    assert (folder / "samples.jsonl").read_text().splitlines(keepends=True) == lines  # the first of each, in order
    again = json.loads((folder / "metrics.json").read_text())
    assert (again["score"], again["n"], again["ci95"]) == (metrics["score"], metrics["n"], metrics["ci95"])


GARBAGE = [b"{not json", b"[1, 2]", b'{"prediction": "no id"}', b"\xff\xfe\x00"]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "score"])
@pytest.mark.parametrize("garbage", GARBAGE, ids=["not-json", "not-an-object", "no-id", "not-utf8"])
def test_a_bad_line_in_samples_is_one_line_naming_file_and_line(home, capsys, command, garbage):
    ok(capsys, RUN)
    folder = only_run(home)
    if command == "run":
        (folder / "metrics.json").unlink()  # a run being resumed
    lines = (folder / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (folder / "samples.jsonl").write_bytes(b"".join([*lines[:2], garbage + b"\n", *lines[2:]]))
    before = recorded(home)
    line = cli_error(capsys, RUN if command == "run" else ["score", str(folder)])
    assert line.startswith(f"error: {folder / 'samples.jsonl'}:3: not a sample line (")
    assert "delete that line" in line
    assert recorded(home) == before


def test_a_torn_last_line_is_cut_on_resume(home, capsys):
    ok(capsys, RUN)
    folder = only_run(home)
    whole = (folder / "samples.jsonl").read_bytes()
    (folder / "metrics.json").unlink()
    (folder / "samples.jsonl").write_bytes(whole + b'{"id": "easyvqa-tiny-1", "predic')
    ok(capsys, RUN)
    assert (folder / "samples.jsonl").read_bytes() == whole


BROKEN = [
    ("metrics.json", b"{broken", "unreadable (Expecting property name"),
    ("metrics.json", b'{"task": "easyvqa-tiny"}', "unreadable (not a run record: no 'model')"),
    ("metrics.json", b"[]", "unreadable (not a JSON object)"),
    ("config.json", b"{broken", "unreadable (Expecting property name"),
    ("config.json", b"{}", "unreadable ("),
]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "score"])
@pytest.mark.parametrize("name, content, expected", BROKEN, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BROKEN)])
def test_a_broken_run_record_is_one_line_and_its_advice_works(home, capsys, command, name, content, expected):
    ok(capsys, RUN)
    folder = only_run(home)
    samples = (folder / "samples.jsonl").read_bytes()
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / name).write_bytes(content)
    before = recorded(home)
    line = cli_error(capsys, RUN if command == "run" else ["score", str(folder)])
    assert line.startswith(f"error: {folder / name}: {expected}"), line
    assert "delete" in line and "run the cell again" in line
    assert recorded(home) == before
    # The advice: delete metrics.json and run the cell again; the saved samples are scored, none answered again.
    (folder / "metrics.json").unlink()
    ok(capsys, RUN)
    assert (folder / "samples.jsonl").read_bytes() == samples
    assert json.loads((folder / "metrics.json").read_text())["score"] == metrics["score"]
    assert json.loads((folder / "config.json").read_text())["task"] == "easyvqa-tiny"
