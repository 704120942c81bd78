"""emoji6-open on a small table in the layout `harness data build emoji6` writes: five support vendors give
five distinct drawings of a concept at inner_shots 5, and twitter draws every query."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from harness.data import offline
from harness.data.built import FORMAT
from harness.data.tiny_built import VENDOR_STYLES
from harness.data.tiny_files import drawing, png_bytes
from harness.errors import HarnessError
from harness.evaluation import tasks

CONCEPTS = [("red", "circle"), ("blue", "triangle"), ("green", "rectangle"), ("black", "circle")]
TONED = "waving hand"  # a concept with two skin tones besides its plain drawing, as emoji.json has them
SUPPORT = {"google", "facebook", "apple", "emojione", "messenger"}


def _columns() -> dict[str, list]:
    rows = [(f"{c} {s}", f"{c}_{s}", "", c, s) for c, s in CONCEPTS]
    rows += [(TONED, "wave", tone, "yellow", "triangle") for tone in ("", "1F3FB", "1F3FF")]
    columns: dict[str, list] = {k: [] for k in ("concept", "short_name", "category", "subcategory", "vendor")}
    columns.update(skin_tone=[], image=[])
    for concept, short_name, tone, color, shape in rows:
        for vendor in offline.EMOJI_KNOWN_VENDORS:
            for column, value in zip(columns, (concept, short_name, "Symbols", "geometric", vendor, tone)):
                columns[column].append(value)
            image = drawing(color, shape, size=64, **VENDOR_STYLES[vendor])
            columns["image"].append({"bytes": png_bytes(image), "path": None})
    return columns


@pytest.fixture
def emoji6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    columns = _columns()
    text = ("concept", "short_name", "category", "subcategory", "vendor", "skin_tone")
    manifest = {"name": "emoji6", "format": FORMAT, "options": offline._options("emoji6", None, None),
                "packages": [], "version": "emoji-datasource==16.0.0:test", "counts": {}}  # fmt: skip
    offline.save_build(tmp_path / "data" / "emoji6", columns, offline.table_features(text), manifest)
    return tmp_path


def test_five_inner_shots_are_five_vendors(emoji6: Path) -> None:
    task = tasks.resolve("emoji6-open", {"inner_shots": 5, "episodes": 30})
    dataset = tasks.load(task)
    assert dataset.name == "emoji6" and len(dataset.classes) == len(CONCEPTS) + 1
    rows = tasks.rows(task, dataset)
    assert len(rows) == 30
    for row in rows:
        assert row.image.startswith("twitter/")
        by_name: dict[str, list[str]] = {}
        for key, name in row.support:
            by_name.setdefault(name, []).append(key)
        assert len(by_name) == 2 and all(len(keys) == 5 and len(set(keys)) == 5 for keys in by_name.values())
        for keys in by_name.values():
            vendors = [k.split("/")[0] for k in keys]
            assert set(vendors) <= SUPPORT
            if not any(k.split("/")[1].startswith("wave") for k in keys):  # a concept without skin tones
                assert Counter(vendors) == Counter(SUPPORT)
    toned = [k for row in rows for k, _ in row.support if k.split("/")[1].startswith("wave")]
    assert toned and {k.split("/")[0] for k in toned} <= SUPPORT  # skin tones: more images, distinct keys


def test_captions_train_on_five_vendors_and_test_on_twitter(emoji6: Path) -> None:
    dataset = tasks.load(tasks.resolve("emoji6-open"))
    assert {c.image.split("/")[0] for c in dataset.captions["train"]} == SUPPORT
    assert {c.image.split("/")[0] for c in dataset.captions["test"]} == {"twitter"}


def test_more_inner_shots_than_vendors_is_one_line(emoji6: Path) -> None:
    task = tasks.resolve("emoji6-open", {"inner_shots": 6})
    with pytest.raises(HarnessError) as exc:
        tasks.rows(task, tasks.load(task))
    assert "\n" not in str(exc.value)
    assert "class 'black circle' has 5 image(s); 6-shot episodes need 6 support image(s)" in str(exc.value)
