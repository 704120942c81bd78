"""$HARNESS_HOME set but empty (an unset CI variable) is the default home, not the current folder; ``~`` in it is
expanded; a relative one is made absolute, so run records and the results database store absolute paths and the
same home opened from another folder still finds its runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from harness import paths
from harness.cli.main import main

CONSTANT = "class Constant:\n    name = 'constant'\n\n    def generate(self, prompts, max_new_tokens, stop):\n" \
           "        return ['yes'] * len(prompts)\n"  # fmt: skip


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_home_is_the_default_home(value, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("HARNESS_HOME", value)
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path / "user" / ".cache" / "frozen-harness"
    assert main(["list", "tasks"]) == 0
    capsys.readouterr()
    paths.check_home()
    assert (tmp_path / "user" / ".cache" / "frozen-harness").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user"]  # nothing written in the current folder


def test_a_tilde_in_the_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("HARNESS_HOME", "~/x")
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path / "user" / "x"
    paths.check_home()
    assert (tmp_path / "user" / "x").is_dir() and not (tmp_path / "~").exists()


def test_a_relative_home_is_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", "homes/../h")
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path / "h" and paths.home().is_absolute()


def test_a_run_made_in_a_relative_home_is_found_from_another_folder(tmp_path, fresh_home, monkeypatch, capsys):
    (tmp_path / "constant.py").write_text(CONSTANT)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.setenv("HARNESS_HOME", "h")
    args = ["run", "--task", "easyvqa-tiny", "--model", f"{tmp_path / 'constant.py'}:Constant", "--limit", "3",
            "--images", "real", "--quiet"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    home = tmp_path / "a" / "h"
    (metrics,) = home.glob("runs/**/metrics.json")
    stored = json.loads(metrics.read_text())["run_dir"]
    assert stored == str(metrics.parent) and Path(stored).is_absolute()
    with sqlite3.connect(home / "results.sqlite") as db:
        assert [row[0] for row in db.execute("SELECT run_dir FROM runs")] == [stored]
    capsys.readouterr()
    for where, value in [(tmp_path / "b", str(home)), (tmp_path / "b", "../a/h"), (tmp_path, "a/h")]:
        monkeypatch.chdir(where)
        monkeypatch.setenv("HARNESS_HOME", value)
        assert main(["table", "--no-published"]) == 0
        out = capsys.readouterr()
        assert "constant" in out.out and "no finished runs" not in out.out + out.err, out
