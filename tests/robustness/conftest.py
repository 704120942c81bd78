"""Shared by the robustness tests: the official-layout fixtures of the unit tests, reused as they are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import HarnessError
from tests.unit.test_coco_data import coco_dir  # noqa: F401 - a fixture, used by name
from tests.unit.test_vqa_official import vqav2_dir  # noqa: F401 - a fixture, used by name


def one_line(excinfo: pytest.ExceptionInfo[HarnessError]) -> str:
    """The message of a raised HarnessError, checked to be a single line."""
    message = str(excinfo.value)
    assert message and "\n" not in message and "\r" not in message, message
    return message


def cli_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run the CLI in-process: it must exit 2 with one line on stderr and no traceback; the line is returned."""
    from harness.cli.main import main

    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def recorded(home: Path) -> dict[str, str]:
    """Every file a user has recorded under a harness home (run folders, checkpoints), by its sha256: taken
    before and after a fault, nothing may be lost or changed. Lock files only hold a pid and are left out."""
    import hashlib

    out = {}
    for part in ("runs", "checkpoints"):
        for path in sorted((home / part).rglob("*")):
            if path.is_file() and path.name != ".lock":
                out[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A harness home of this test's own; the registries and data sources read again before and after."""
    from harness import registry
    from harness.data import sources

    home = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    registry._load.cache_clear()
    sources._CACHE.clear()
    yield home
    registry._load.cache_clear()
    sources._CACHE.clear()


FAST = ["steps=4", "batch_size=4", "image_size=32", "save_every=2", "train_data=tiny-shapes"]  # as `fast_recipe`
FAST_SETS = [a for s in FAST for a in ("--set", s)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_hub) -> Path:
    """The checkpoints folder of a home where gpt2-frozen was trained with the fast recipe, once per module."""
    from harness.cli.main import main

    home = tmp_path_factory.mktemp("trained") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(home))
        assert main(["train", "--model", "gpt2-frozen", "--quiet", *FAST_SETS]) == 0
    return home / "checkpoints"


@pytest.fixture
def home(fresh_home: Path, trained: Path) -> Path:
    """A home of this test's own where gpt2-frozen (the fast recipe) is trained already."""
    import shutil

    shutil.copytree(trained, fresh_home / "checkpoints")
    return fresh_home
