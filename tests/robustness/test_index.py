"""The results database is an index of the run folders (issue 16): a deleted run folder is left out with a
note, `harness table --rebuild-index` makes the index match the folders, a database that is not SQLite is
rebuilt saying so; a harness home that is a file, cannot be made or is read-only is one line (the reading
commands read a read-only home); `--out` naming a file is one line. Nothing recorded is lost or changed."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from tests.robustness.conftest import FAST_SETS, cli_error, recorded

REPO = Path(__file__).resolve().parents[2]
RUN = ["run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--quiet", "--limit", "8", *FAST_SETS]


def ok(capsys, args: list[str]) -> str:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return out


def rows(home: Path) -> int:
    with sqlite3.connect(home / "results.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.mark.slow
def test_a_deleted_run_folder_is_left_out_with_a_note_and_the_index_rebuilt(home, capsys, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="harness")
    ok(capsys, [*RUN, "--images", "all"])  # real, blacked-out and shuffled images: three run folders
    [shuffled] = [p.parent for p in (home / "runs").rglob("metrics.json") if '"shuffled"' in p.read_text()]
    shutil.rmtree(shuffled)
    before = recorded(home)
    commands = [["table"], ["leaderboard", "--csv", str(tmp_path / "board.csv")],
                ["compare", "--baseline", "gpt2-frozen"], ["report", "--out", str(tmp_path / "report")],
                ["plot", "--out", str(tmp_path / "plots")]]  # fmt: skip
    for args in commands:
        caplog.clear()
        out = ok(capsys, args)
        assert "have no run folder any more" in caplog.text and str(shuffled) in caplog.text, args
        assert "images shuffled" not in out
    assert rows(home) == 3
    caplog.clear()
    assert "images blacked out" in ok(capsys, ["table", "--rebuild-index"])
    assert "no run folder" not in caplog.text and "rebuilt from the run folders: 2 runs" in caplog.text
    assert rows(home) == 2
    assert recorded(home) == before


@pytest.mark.parametrize("garbage", [b"not a database\n" * 64, b"SQLite format 3\x00" + b"\x07" * 4000])
def test_a_results_database_that_is_not_sqlite_is_rebuilt_from_the_run_folders(home, capsys, caplog, garbage):
    ok(capsys, [*RUN, "--images", "both"])
    before = recorded(home)
    (home / "results.sqlite").write_bytes(garbage)
    out = ok(capsys, ["table", "--no-published"])
    assert "gpt2-frozen (images blacked out)" in out
    assert "is not a readable SQLite database" in caplog.text or "was not a readable SQLite database" in caplog.text
    assert (home / "results.sqlite.unreadable").read_bytes() == garbage  # kept aside, not deleted
    assert rows(home) == 2
    assert recorded(home) == before


@pytest.mark.parametrize(
    "command", [RUN, ["table"], ["train", "--model", "gpt2-frozen"]], ids=["run", "table", "train"]
)
def test_a_home_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys, command):
    (tmp_path / "home").write_text("my notes\n")
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    line = cli_error(capsys, command)
    assert line == f"error: HARNESS_HOME {tmp_path / 'home'}: is a file, not a folder; set HARNESS_HOME to a folder"
    assert (tmp_path / "home").read_text() == "my notes\n"


def test_a_home_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "file" / "home"))
    line = cli_error(capsys, RUN)
    assert line.startswith(f"error: HARNESS_HOME {tmp_path / 'file' / 'home'}: cannot be made (Not a directory)")
    assert "no finished runs" in cli_error(capsys, ["table"])  # a reading command: nothing to read, said so


def _without_write_rights() -> list[str]:
    """How to run a command that the permission bits bind: root writes anywhere, so as root the command runs
    without the capabilities that override them (root, the owner, then needs the owner's bits like anyone)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv to give up write rights")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.slow
def test_a_read_only_home_is_read_by_the_reading_commands_and_refused_by_the_others(home, capsys):
    ok(capsys, [*RUN, "--images", "both"])
    before, database = recorded(home), (home / "results.sqlite").read_bytes()
    try:
        for path in [home, *home.rglob("*")]:
            os.chmod(path, 0o555 if path.is_dir() else 0o444)
        env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_HOME": str(home)}
        done = [subprocess.run([*_without_write_rights(), sys.executable, "-m", "harness", *args], env=env,
                               capture_output=True, text=True, check=False, timeout=300)
                for args in (["table"], ["train", "--model", "gpt2-frozen"])]  # fmt: skip
        assert done[0].returncode == 0, done[0].stderr
        assert "gpt2-frozen (images blacked out)" in done[0].stdout and "Traceback" not in done[0].stderr
        assert done[1].returncode == 2 and done[1].stderr.count("\n") == 1, done[1].stderr
        assert done[1].stderr.startswith(f"error: HARNESS_HOME {home}: is read-only; set HARNESS_HOME to a folder")
    finally:
        for path in [home, *home.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert recorded(home) == before and (home / "results.sqlite").read_bytes() == database


@pytest.mark.parametrize("command", ["report", "plot"])
def test_out_naming_a_file_is_one_line_and_the_file_stays(home, capsys, tmp_path, command):
    ok(capsys, [*RUN, "--images", "both"])
    (tmp_path / "taken").write_text("mine\n")
    line = cli_error(capsys, [command, "--out", str(tmp_path / "taken")])
    assert line.startswith(f"error: --out {tmp_path / 'taken'}: is a file, not a folder; name a folder for ")
    assert (tmp_path / "taken").read_text() == "mine\n"
