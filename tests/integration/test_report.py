"""harness report: one self-contained HTML page, opened in headless Chromium (Debian's package)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from harness.cli.main import main

GRID = """
description: report test grid
tasks: [easyvqa-tiny, miniimagenet-open-tiny]
models: [gpt2-frozen]
shots: [0, 1]
seeds: [0]
images: [real, black]
limit: 6
set: {steps: 2, batch_size: 2, pairs: 2, image_size: 32, save_every: 1, train_data: tiny-shapes, seed: 5}
"""


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("HARNESS_REQUIRE_CHROMIUM"):
        pytest.fail(
            "HARNESS_REQUIRE_CHROMIUM is set but chromium is not installed (scripts/setup.sh installs it as root)"
        )
    return found


@pytest.fixture(scope="module")
def report(tiny_hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    (folder / "grid.yaml").write_text(GRID)
    with pytest.MonkeyPatch.context() as mp:  # a results database of its own: only this grid's runs
        mp.setenv("HARNESS_HOME", str(folder / "home"))
        assert main(["sweep", str(folder / "grid.yaml"), "--quiet"]) == 0
        assert main(["report", "--baseline", "gpt2-frozen", "--out", str(folder / "out")]) == 0
    return folder / "out"


@pytest.mark.slow
def test_report_is_one_self_contained_page_with_tables_plots_and_galleries(report):
    page = (report / "index.html").read_text()
    # Self-contained: nothing is fetched from anywhere, every picture is a data URI.
    assert not re.search(r'(src|href)="(?!data:)[^"#]', page)
    assert "<h3>Comparison" in page and "<h3>Δ vs gpt2-frozen" in page and "<h3>Leaderboard" in page
    assert "miniimagenet-open-tiny 2-way 1-shot (first 6)" in page
    assert page.count('<figure><img src="data:image/png;base64,') >= 3  # few-shot curve and ablation bars
    assert page.count('<details class="run"') >= 6  # 2 easyvqa shot counts + naming, x real/black
    cards = re.findall(r'<div class="card (\w+)">', page)
    assert len(cards) >= 36 and set(cards) <= {"correct", "partial", "incorrect", "unscored"}
    images = re.search(r"const IMAGES = (\{.*?\});\n", page).group(1)
    assert images.count("data:image/jpeg;base64,") >= 6
    summary = (report / "summary.md").read_text()
    assert "| gpt2-frozen (images blacked out)" in summary and "## Plots" in summary


@pytest.mark.slow
def test_report_renders_in_headless_chromium_and_filters(report, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed here (scripts/setup.sh installs Debian's package when run as root)")
    url = (report / "index.html").as_uri()
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    dom = subprocess.run([*args, "--dump-dom", url + "#show=incorrect&open"], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    rendered = re.search(r'data-rendered="(\d+)" data-total="(\d+)"', dom)
    assert rendered, "the page's load handler did not run"
    ok, total = map(int, rendered.groups())
    assert total >= 40 and ok == total  # every thumbnail and plot decoded to a real picture
    assert "<table" in dom and "gpt2-frozen (images blacked out)" in dom
    # The filter from the address: incorrect cards shown, every other card hidden.
    cards = re.findall(r'<div class="card (\w+)( hidden)?">', dom)
    assert cards and all(bool(hidden) == (kind != "incorrect") for kind, hidden in cards)
    shot = tmp_path / "report.png"
    subprocess.run([*args, "--window-size=1280,2000", f"--screenshot={shot}", url + "#open"], capture_output=True,
                   timeout=120, check=True)  # fmt: skip
    from PIL import Image

    picture = Image.open(shot).convert("L")
    assert picture.size == (1280, 2000)
    low, high = picture.getextrema()
    assert low < 60 and high > 200  # text and pictures on a white page, not a blank one
