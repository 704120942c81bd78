"""The package carries its own data: a wheel built from the repository, installed elsewhere, finds every
built-in task, recipe and grid and the published numbers, and runs a tiny task from another folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_installed_wheel_lists_its_tasks_and_runs_one_from_another_folder(tmp_path, tiny_hub, fast_recipe):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(REPO)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("frozen_harness-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    catalog = REPO / "harness" / "catalog"
    shipped = {f"harness/catalog/{p.relative_to(catalog).as_posix()}" for p in catalog.rglob("*") if p.is_file()}
    assert {"harness/catalog/published.csv", "harness/catalog/tasks/easyvqa.yaml", "harness/catalog/recipes/frozen.yaml",
            "harness/catalog/grids/cpu-small.yaml"} <= shipped  # fmt: skip
    assert shipped <= inside, sorted(shipped - inside)

    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                               capture_output=True, text=True)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def harness(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=elsewhere, env=env, capture_output=True,
                              text=True)  # fmt: skip

    where = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout  # the wheel's copy, not the repository
    listed = harness("list", "tasks")
    assert listed.returncode == 0, listed.stderr
    for task in (REPO / "harness" / "catalog" / "tasks").glob("*.yaml"):
        assert f"| {task.stem} " in listed.stdout
    recipes = harness("list", "recipes")
    assert recipes.returncode == 0 and "train-blind" in recipes.stdout, recipes.stderr
    sets = [a for s in fast_recipe for a in ("--set", s)]
    ran = harness("run", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--limit", "8",
                  "--quiet", *sets)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "easyvqa-tiny" in ran.stdout and "VQA accuracy" in ran.stdout
    table = harness("table", "--task", "easyvqa-tiny")  # published numbers come from the installed copy too
    assert table.returncode == 0, table.stderr
