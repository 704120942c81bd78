"""Building the offline datasets from package registries: emoji (npm) and Tux Paint stamps (Debian).
``harness.data.built`` reads what this writes.

``build(name)`` fetches the package with its ordinary client into a temporary folder, keeps the
images as PNG bytes in a ``datasets`` table (``save_to_disk``) under ``$HARNESS_HOME/data/<name>/``
and writes ``manifest.json`` beside it: package versions, the sha256 of each downloaded archive and
of each built file. Loading re-checks those file checksums. Nothing is redistributed: every user
builds from the packages (the stamps are GPL-2).

emoji (``emoji-datasource-<vendor>``): one row per (concept, vendor) image, 64x64. A concept is an
``emoji.json`` entry drawn by every chosen vendor; skin-tone variations are extra images of their
concept. The entries come from a 16.0.0 package. Six vendors are known: google, twitter, facebook and
apple at 16.0.0, emojione at 4.0.4 and messenger at 4.1.0 (their last packages). A vendor at 16.0.0
draws an entry when emoji.json flags it (``has_img_<vendor>``) and its archive holds the file; an
older package's emoji.json flags only its own version's images, so there the file alone counts (the
file names are the unified codes in every version). ``emoji`` is built with google, twitter and
facebook (apple's images forbid commercial use), ``emoji6`` with all six. The concept is the
lower-cased ``name``, except that emoji.json gives two emoji the name "MAN IN TUXEDO" (1F935 is
the person in tuxedo): a concept shared by several entries takes the spaced ``short_name`` of the
entries whose short name says otherwise. Captions split by vendor: twitter test, every other vendor
train, so captioning is scored on a drawing style not trained on.

tuxpaint (``tuxpaint-stamps-default``): one row per stamp that has a caption: the first line of the
``.txt`` beside it without a ``<locale>.utf8=`` prefix is the English one. Stamps that exist only as
SVG are skipped (no SVG renderer is a dependency) and counted in the manifest; where a stamp has
both, the PNG is used. ``*_mirror`` images are Tux Paint's mirrored variants, not stamps, and have
no caption. Many stamps are "colorable"/"tintable" (grey or black until the user picks a colour).
The train/test split is a seeded hash of the stamp key, so it holds across versions and limits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness import paths
from harness.data.built import FORMAT, sha256_of, valid_manifest
from harness.data.files import inside
from harness.errors import HarnessError, unknown_name

log = logging.getLogger(__name__)

EMOJI_VERSION = "16.0.0"  # the emoji.json every build reads, and the package version of most vendors
EMOJI_VENDORS = ("google", "twitter", "facebook")  # the emoji build's vendors
EMOJI_OLDER_PACKAGES = {"emojione": "4.0.4", "messenger": "4.1.0"}  # vendors whose last package is older
EMOJI_KNOWN_VENDORS = (*EMOJI_VENDORS, "apple", *EMOJI_OLDER_PACKAGES)  # the emoji6 build's vendors, in row order
_EMOJI_DEFAULTS = {"emoji": EMOJI_VENDORS, "emoji6": EMOJI_KNOWN_VENDORS}
TUXPAINT_PACKAGE = "tuxpaint-stamps-default"
TUXPAINT_STAMPS = "usr/share/tuxpaint/stamps"
TUXPAINT_TEST_FRACTION = 0.2
TUXPAINT_SPLIT_SEED = "tuxpaint-split-0"

_TOOLS = {
    "npm": "install Node.js with npm (e.g. `apt-get install npm`)",
    "apt-get": "build it on a Debian or Ubuntu system (apt-get and dpkg)",
    "dpkg": "build it on a Debian or Ubuntu system (apt-get and dpkg)",
}
_LOCALE_LINE = re.compile(r"^[\w@.-]+\.utf8=")
_NOISE = re.compile(r"npm warn|W:|npm error (code|syscall|errno) |.*complete log of this run", re.IGNORECASE)
_NPM_CODE = re.compile(r"npm error code (\S+)", re.IGNORECASE)


# ---- building ----------------------------------------------------------------------------------


def build(name: str, force: bool = False, *, vendors: Iterable[str] | None = None, limit: int | None = None) -> Path:
    """Build the offline source ``name`` ("emoji", "emoji6" or "tuxpaint") unless a valid build with the
    same options exists; return its folder. ``vendors`` (emoji, emoji6) and ``limit`` (first N concepts or
    stamps) make small builds for tests."""
    if name not in _BUILDERS:
        raise unknown_name("offline data source", name, _BUILDERS)
    builder, tools = _BUILDERS[name]
    options = _options(name, vendors, limit)
    folder = paths.subdir("data") / name
    if not force and (folder / "manifest.json").exists():
        try:
            manifest = valid_manifest(folder, name)
        except HarnessError as exc:
            log.info("rebuilding %s: %s", name, exc)
        else:
            if manifest["options"] == options:
                log.info("%s is already built (%s)", name, manifest["version"])
                return folder
            log.info("rebuilding %s: built with %s, asked for %s", name, manifest["options"], options)
    for tool in tools:
        if shutil.which(tool) is None:
            raise HarnessError(f"building {name} needs `{tool}`, which is not on PATH: {_TOOLS[tool]}")
    with tempfile.TemporaryDirectory(prefix=f"harness-{name}-") as tmp:
        columns, features, manifest = builder(Path(tmp), options)
    manifest = {"name": name, "format": FORMAT, "options": options, **manifest}
    _write(folder, columns, features, manifest)
    log.info("built %s: %d rows in %s", name, manifest["counts"]["rows"], folder)
    return folder


def _options(name: str, vendors: Iterable[str] | None, limit: int | None) -> dict[str, Any]:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise HarnessError(f"data build {name}: limit must be a positive integer, not {limit!r}")
    if name not in _EMOJI_DEFAULTS:
        if vendors is not None:
            raise HarnessError(f"data build {name}: only emoji and emoji6 have vendors")
        return {"limit": limit}
    chosen = list(_EMOJI_DEFAULTS[name] if vendors is None else vendors)
    unknown = [v for v in chosen if v not in EMOJI_KNOWN_VENDORS]
    if unknown or not chosen:
        raise HarnessError(f"data build {name}: unknown vendor '{unknown[0] if unknown else ''}' "
                           f"(known: {', '.join(EMOJI_KNOWN_VENDORS)})")  # fmt: skip
    if all(v in EMOJI_OLDER_PACKAGES for v in chosen):
        current = [v for v in EMOJI_KNOWN_VENDORS if v not in EMOJI_OLDER_PACKAGES]
        raise HarnessError(f"data build {name}: vendors {', '.join(chosen)} need one of {', '.join(current)} "
                           f"beside them: the emoji list is read from a {EMOJI_VERSION} package")  # fmt: skip
    return {"vendors": [v for v in EMOJI_KNOWN_VENDORS if v in chosen], "limit": limit}


def _run(cmd: list[str], cwd: Path) -> str:
    """Run a fetch tool; a failure becomes one line naming the command and its error."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise HarnessError(f"`{' '.join(cmd)}` could not start: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise HarnessError(f"`{' '.join(cmd)}` failed: {_error_line(done.stderr + done.stdout, done.returncode)}")
    return done.stdout


def _error_line(output: str, returncode: int) -> str:
    """The tool's own error line; npm's error code (ENOSPC, E404, ...) is kept when the line lacks it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    useful = [line for line in lines if not _NOISE.match(line)]
    code = next((m.group(1) for m in map(_NPM_CODE.match, lines) if m), None)
    for line in useful:
        if re.match(r"(npm error|E:|error)", line, re.IGNORECASE):
            if line.startswith("E:"):
                return line + " (run `apt-get update` first if the package is unknown)"
            return line if code is None or code in line else f"{line} ({code})"
    return useful[-1] if useful else (f"npm error code {code}" if code else f"exit status {returncode}")


def _npm_pack(package: str, version: str, tmp: Path) -> Path:
    _run(["npm", "pack", "--loglevel=error", f"{package}@{version}"], tmp)
    archive = tmp / f"{package}-{version}.tgz"
    if not archive.is_file():
        raise HarnessError(f"`npm pack {package}@{version}` wrote no {archive.name}")
    return archive


def _build_emoji(tmp: Path, options: dict[str, Any]) -> tuple[dict, dict, dict]:
    vendors, limit = options["vendors"], options["limit"]
    images: dict[str, dict[str, bytes]] = {}
    packages, entries, flagged = [], None, []
    for vendor in vendors:
        package, wanted = f"emoji-datasource-{vendor}", EMOJI_OLDER_PACKAGES.get(vendor, EMOJI_VERSION)
        log.info("fetching %s@%s with npm", package, wanted)
        archive = _npm_pack(package, wanted, tmp)
        prefix = f"package/img/{vendor}/64/"
        images[vendor], meta = {}, {}
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".png"):
                    images[vendor][member.name[len(prefix) :]] = tar.extractfile(member).read()
                elif member.isfile() and member.name in ("package/emoji.json", "package/package.json"):
                    meta[member.name] = json.loads(tar.extractfile(member).read())
        if len(meta) < 2:
            raise HarnessError(f"{archive.name}: no package/emoji.json or package/package.json inside")
        version = meta["package/package.json"]["version"]
        if version == EMOJI_VERSION:  # the same emoji.json in every package of this version
            entries = entries or meta["package/emoji.json"]
            flagged.append(vendor)
        packages.append({"name": package, "version": version, "archive": archive.name, "sha256": sha256_of(archive)})
        archive.unlink()

    if entries is None:
        raise HarnessError(f"data build: no {EMOJI_VERSION} package among {', '.join(p['name'] for p in packages)}")

    def drawn(entry: dict, image: str) -> bool:
        return emoji_drawn(entry, image, images, flagged)

    concepts = _emoji_concepts(entries)
    chosen = sorted((e for e in entries if drawn(e, e["image"])), key=lambda e: (e["sort_order"], e["unified"]))
    columns: dict[str, list] = defaultdict(list)
    for entry in chosen[:limit]:
        variants = [("", entry["image"])] + [
            (tone, variation["image"])
            for tone, variation in sorted(entry.get("skin_variations", {}).items())
            if drawn(variation, variation["image"])
        ]
        for tone, image in variants:
            for vendor in vendors:
                columns["concept"].append(concepts[entry["unified"]])
                columns["short_name"].append(entry["short_name"])
                columns["category"].append(entry["category"])
                columns["subcategory"].append(entry["subcategory"])
                columns["vendor"].append(vendor)
                columns["skin_tone"].append(tone)
                columns["image"].append({"bytes": images[vendor][image], "path": None})
    renamed = {e["unified"]: concepts[e["unified"]] for e in entries if concepts[e["unified"]] != e["name"].lower()}
    manifest = {
        "packages": packages,
        "version": _version("emoji-datasource", packages[0]["version"], packages, options),
        "counts": {
            "rows": len(columns["concept"]),
            "concepts": len(set(columns["concept"])),
            "concepts_in_package": len(entries),
            "concepts_drawn_by_all_vendors": len(chosen),
            "skin_tone_rows": sum(1 for t in columns["skin_tone"] if t),
            "per_vendor": dict(Counter(columns["vendor"])),
        },
        "renamed_concepts": renamed,
    }
    text = ("concept", "short_name", "category", "subcategory", "vendor", "skin_tone")
    return dict(columns), table_features(text), manifest


def emoji_drawn(entry: dict, image: str, images: dict[str, Any], flagged: Iterable[str]) -> bool:
    """Whether every vendor of ``images`` (vendor -> its archive's file names) draws ``image`` of the emoji.json
    ``entry``: the file is in its archive, and for a ``flagged`` vendor (its package is the version emoji.json
    comes from) emoji.json also flags it (``has_img_<vendor>``). An older package's vendor has no flag there."""
    return all(image in names and (v not in flagged or entry.get(f"has_img_{v}")) for v, names in images.items())


def _emoji_concepts(entries: list[dict]) -> dict[str, str]:
    """unified code -> concept name: the lower-cased name, made unique where emoji.json repeats one."""
    shared = Counter(e["name"].lower() for e in entries)
    concepts = {}
    for e in entries:
        concept = e["name"].lower()
        if shared[concept] > 1 and e["short_name"].replace("_", " ") != concept:
            concept = e["short_name"].replace("_", " ")
        concepts[e["unified"]] = concept
    if len(set(concepts.values())) < len(concepts):
        repeated = next(c for c, n in Counter(concepts.values()).items() if n > 1)
        raise HarnessError(f"emoji.json: several emoji share the concept name '{repeated}'")
    return concepts


def _build_tuxpaint(tmp: Path, options: dict[str, Any]) -> tuple[dict, dict, dict]:
    log.info("fetching %s with apt-get download", TUXPAINT_PACKAGE)
    _run(["apt-get", "download", TUXPAINT_PACKAGE], tmp)
    debs = sorted(tmp.glob(f"{TUXPAINT_PACKAGE}_*.deb"))
    if not debs:
        raise HarnessError(f"`apt-get download {TUXPAINT_PACKAGE}` wrote no .deb file")
    deb = debs[0]
    version = _run(["dpkg", "-f", str(deb), "Version"], tmp).strip()
    package = {"name": TUXPAINT_PACKAGE, "version": version, "archive": deb.name, "sha256": sha256_of(deb)}
    _run(["dpkg", "-x", str(deb), str(tmp / "root")], tmp)
    root = tmp / "root" / TUXPAINT_STAMPS
    if not root.is_dir():
        raise HarnessError(f"{deb.name}: no {TUXPAINT_STAMPS} folder inside")

    formats: dict[str, set[str]] = defaultdict(set)
    real_root = root.resolve()
    for path in root.rglob("*"):  # a link in the package that leads out of it is not a stamp
        if path.suffix in (".png", ".svg") and path.is_file() and inside(real_root, path):
            formats[path.relative_to(root).with_suffix("").as_posix()].add(path.suffix)
    captioned, svg_only, uncaptioned = [], 0, 0
    for key in sorted(formats):
        caption = _stamp_caption(root / f"{key}.txt")
        if not caption:
            uncaptioned += 1
        elif ".png" in formats[key]:
            captioned.append((key, caption))
        else:
            svg_only += 1
    orphans = sum(1 for t in root.rglob("*.txt") if t.relative_to(root).with_suffix("").as_posix() not in formats)

    columns: dict[str, list] = defaultdict(list)
    for key, caption in captioned[: options["limit"]]:
        columns["key"].append(key)
        columns["caption"].append(caption)
        columns["category"].append(key.split("/", 1)[0])
        columns["split"].append(tuxpaint_split(key))
        columns["image"].append({"bytes": (root / f"{key}.png").read_bytes(), "path": None})
    manifest = {
        "packages": [package],
        "version": _version(TUXPAINT_PACKAGE, version, [package], options),
        "counts": {
            "rows": len(columns["key"]),
            **{split: columns["split"].count(split) for split in ("train", "test")},
            "stamps_in_package": len(formats),
            "svg_skipped": svg_only,
            "svg_with_png_used": sum(1 for f in formats.values() if f == {".png", ".svg"}),
            "images_without_caption": uncaptioned,
            "captions_without_image": orphans,
        },
    }
    return dict(columns), table_features(("key", "caption", "category", "split")), manifest


def _stamp_caption(path: Path) -> str:
    """The English line of a stamp's .txt: the first line without a ``<locale>.utf8=`` prefix."""
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return next((" ".join(line.split()) for line in lines if line.strip() and not _LOCALE_LINE.match(line)), "")


def tuxpaint_split(key: str) -> str:
    """The split of a stamp key, "train" or "test", from a seeded hash: stable across builds and limits."""
    value = int.from_bytes(hashlib.sha256(f"{TUXPAINT_SPLIT_SEED}|{key}".encode()).digest()[:8], "big")
    return "test" if value < TUXPAINT_TEST_FRACTION * 2**64 else "train"


def _version(package: str, version: str, packages: list[dict], options: dict) -> str:
    checksums = [p["sha256"] for p in packages]
    return f"{package}=={version}:{paths.fingerprint({'archives': checksums, 'options': options, 'format': FORMAT})}"


def table_features(text_columns: Iterable[str]) -> Any:
    import datasets

    return datasets.Features({**{c: datasets.Value("string") for c in text_columns}, "image": datasets.Image()})


def save_build(folder: Path, columns: dict, features: Any, manifest: dict) -> None:
    """Write a build into ``folder``: the ``datasets`` table in ``table/`` and ``manifest.json``, to which the
    sha256 of every table file is added (``files``). ``harness.data.tiny_built`` writes its twins with it."""
    import datasets

    table = datasets.Dataset.from_dict(columns, features=features)
    table.save_to_disk(str(folder / "table"))
    manifest["files"] = {
        p.relative_to(folder).as_posix(): sha256_of(p) for p in sorted((folder / "table").rglob("*")) if p.is_file()
    }
    paths.atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))


def _write(folder: Path, columns: dict, features: Any, manifest: dict) -> None:
    """Save the table and manifest in a sibling folder, then swap it in by renames."""
    staging = folder.with_name(f".{folder.name}.building-{os.getpid()}")
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_build(staging, columns, features, manifest)
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
    finally:
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


_BUILDERS: dict[str, tuple[Callable[[Path, dict], tuple[dict, dict, dict]], tuple[str, ...]]] = {
    "emoji": (_build_emoji, ("npm",)),
    "emoji6": (_build_emoji, ("npm",)),
    "tuxpaint": (_build_tuxpaint, ("apt-get", "dpkg")),
}
