"""tiny-emoji and tiny-tuxpaint: the tiny twins of the built offline sources, generated tables in exactly the
layout ``harness data build`` writes (``harness.data.offline.save_build``: a ``datasets`` table in ``table/`` and
``manifest.json`` with the files' checksums), read back by the real loaders (``harness.data.built``).

tiny-emoji: every tiny-shapes class is a concept ("red circle", short name ``red_circle``, no skin tones), drawn
64x64 on transparency by three "vendors" in their own styles: google large and centred, twitter smaller and off
centre, facebook outlined on a pale tile. As with the real emoji, google and facebook caption the training
images and twitter the test images, and the naming tasks take support from google and facebook and the query
from twitter. tiny-emoji6, emoji6's twin: the same concepts drawn by all six vendors (apple, emojione and
messenger in three more styles), support from the five that are not twitter.

tiny-tuxpaint: 96 "stamps" (``shapes/circles/small_red_circle``, a small or big shape, plain or outlined, on
transparency), each captioned with an English sentence ("A small red circle with a dark outline."), split
train/test by the real build's seeded hash of the key (``offline.tuxpaint_split``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness import paths
from harness.data.built import FORMAT, load_emoji, load_tuxpaint, valid_manifest
from harness.data.offline import EMOJI_KNOWN_VENDORS, EMOJI_VENDORS, save_build, table_features, tuxpaint_split
from harness.data.sources import SOURCES, Source, generated
from harness.data.tiny_files import CLASSES, drawing, generated_folder, png_bytes
from harness.data.types import Dataset
from harness.errors import HarnessError

GENERATOR = 1  # bump when the generated tables change, so that old copies are rewritten
SIZE = 64  # the real emoji images' size
# vendor -> drawing style: the shape's radius and centre, the background, the outline's width
VENDOR_STYLES = {
    "google": {"radius": 26, "center": (32, 32)},
    "twitter": {"radius": 20, "center": (27, 29)},
    "facebook": {"radius": 22, "center": (32, 33), "background": (232, 236, 244, 255), "outline": 3},
    "apple": {"radius": 24, "center": (35, 30), "outline": 2},
    "emojione": {"radius": 17, "center": (32, 32), "background": (252, 244, 210, 255)},
    "messenger": {"radius": 28, "center": (30, 34), "background": (228, 246, 232, 255), "outline": 2},
}
STAMP_SIZES = {"small": 14, "big": 28}


def _version(name: str, columns: dict) -> str:
    text = {k: v for k, v in columns.items() if k != "image"}
    images = [hashlib.sha256(cell["bytes"]).hexdigest() for cell in columns["image"]]
    return f"{name}-{GENERATOR}:{paths.fingerprint({'columns': text, 'images': images, 'format': FORMAT})}"


def emoji_columns(vendors: tuple[str, ...] = EMOJI_VENDORS) -> dict[str, list]:
    columns: dict[str, list] = {k: [] for k in ("concept", "short_name", "category", "subcategory", "vendor")}
    columns.update(skin_tone=[], image=[])
    for color, shape in CLASSES:
        for vendor in vendors:  # the real build's row order: per concept, every vendor
            columns["concept"].append(f"{color} {shape}")
            columns["short_name"].append(f"{color}_{shape}")
            columns["category"].append("Symbols")
            columns["subcategory"].append("geometric")
            columns["vendor"].append(vendor)
            columns["skin_tone"].append("")
            image = drawing(color, shape, size=SIZE, **VENDOR_STYLES[vendor])
            columns["image"].append({"bytes": png_bytes(image), "path": None})
    return columns


def write_emoji(folder: Path, name: str = "tiny-emoji", vendors: tuple[str, ...] = EMOJI_VENDORS) -> None:
    columns = emoji_columns(vendors)
    manifest = {
        "name": name,
        "format": FORMAT,
        "options": {"vendors": list(vendors), "limit": None},
        "packages": [],
        "version": _version(name, columns),
        "counts": {
            "rows": len(columns["concept"]),
            "concepts": len(set(columns["concept"])),
            "skin_tone_rows": 0,
            "per_vendor": {v: columns["vendor"].count(v) for v in vendors},
        },
        "renamed_concepts": {},
    }
    text = ("concept", "short_name", "category", "subcategory", "vendor", "skin_tone")
    save_build(folder, columns, table_features(text), manifest)


def stamps() -> list[tuple[str, str, str, str, int, bool]]:
    """(key, caption, colour, shape, radius, outlined) of every tiny Tux Paint stamp."""
    out = []
    for color, shape in CLASSES:
        for size, radius in STAMP_SIZES.items():
            for outlined in (False, True):
                key = f"shapes/{shape}s/{size}_{color}_{shape}" + ("_outlined" if outlined else "")
                caption = f"A {size} {color} {shape}" + (" with a dark outline." if outlined else ".")
                out.append((key, caption, color, shape, radius, outlined))
    return out


def write_tuxpaint(folder: Path) -> None:
    columns: dict[str, list] = {"key": [], "caption": [], "category": [], "split": [], "image": []}
    for key, caption, color, shape, radius, outlined in stamps():
        image = drawing(color, shape, size=SIZE, radius=radius, center=(32, 32), outline=3 if outlined else 0)
        columns["key"].append(key)
        columns["caption"].append(caption)
        columns["category"].append(key.split("/", 1)[0])
        columns["split"].append(tuxpaint_split(key))
        columns["image"].append({"bytes": png_bytes(image), "path": None})
    manifest = {
        "name": "tiny-tuxpaint",
        "format": FORMAT,
        "options": {"limit": None},
        "packages": [],
        "version": _version("tiny-tuxpaint", columns),
        "counts": {"rows": len(columns["key"]), **{s: columns["split"].count(s) for s in ("train", "test")}},
    }
    save_build(folder, columns, table_features(("key", "caption", "category", "split")), manifest)


def _current(name: str, folder: Path) -> bool:
    """A complete build, every file matching its checksum, by this generator."""
    try:
        return valid_manifest(folder, name)["version"].startswith(f"{name}-{GENERATOR}:")
    except HarnessError:
        return False


def load_tiny_emoji() -> Dataset:
    generated_folder("tiny-emoji", write_emoji, lambda f: _current("tiny-emoji", f))
    return load_emoji("tiny-emoji")


def load_tiny_emoji6() -> Dataset:
    generated_folder("tiny-emoji6", lambda f: write_emoji(f, "tiny-emoji6", EMOJI_KNOWN_VENDORS),
                     lambda f: _current("tiny-emoji6", f))  # fmt: skip
    return load_emoji("tiny-emoji6")


def load_tiny_tuxpaint() -> Dataset:
    generated_folder("tiny-tuxpaint", write_tuxpaint, lambda f: _current("tiny-tuxpaint", f))
    return load_tuxpaint("tiny-tuxpaint")


SOURCES.add("tiny-emoji", Source(load_tiny_emoji, generated))
SOURCES.add("tiny-emoji6", Source(load_tiny_emoji6, generated))
SOURCES.add("tiny-tuxpaint", Source(load_tiny_tuxpaint, generated))
