"""Shared by the tiny twins' generated sources (``tiny_vqa``, ``tiny_folders``, ``tiny_built``): files in a real
source's own layout, written once under ``$HARNESS_HOME/data/<source>/`` and then read by that source's real loader.

A generated folder appears whole or not at all: it is written into a temporary sibling folder that is then
renamed into place, so a reader never sees half of it, and when two processes generate it at once, the first
rename wins and the other process uses the winner's folder. Its images are the tiny-shapes drawings
(``harness.data.tiny``): a coloured circle, rectangle or triangle.
"""

from __future__ import annotations

import io
import os
import random
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw

from harness import paths
from harness.data.shapes import COLORS, SHAPES

# Every (colour, shape) pair: the tiny-shapes classes ("red circle"), in a fixed order.
CLASSES: tuple[tuple[str, str], ...] = tuple((color, shape) for color in COLORS for shape in SHAPES)


def generated_folder(name: str, write: Callable[[Path], None], current: Callable[[Path], bool]) -> Path:
    """``$HARNESS_HOME/data/<name>``, written by ``write(folder)`` unless it is there and ``current(folder)``.

    ``write`` fills a new empty folder beside it, which is then renamed into place (a stale folder, one that
    ``current`` refuses, is moved aside first); if another process's rename got there first, its folder is kept.
    """
    folder = paths.subdir("data") / name
    if folder.is_dir() and current(folder):
        return folder
    staging = folder.with_name(f".{name}.generating-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        staging.mkdir()
        write(staging)
        if folder.is_dir() and not current(folder):
            stale = folder.with_name(f".{name}.stale-{os.getpid()}-{secrets.token_hex(4)}")
            try:
                os.rename(folder, stale)
            except FileNotFoundError:  # another process moved it aside first
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(staging, folder)
        except OSError:
            if not folder.is_dir():  # not a lost race: a real failure
                raise
    except OSError as err:
        raise paths.write_error(folder, err) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def listing(folder: Path) -> set[str]:
    """Every file under ``folder``, as paths relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def photo(color: str, shape: str, rng: random.Random) -> PILImage.Image:
    """A tiny-shapes image (``harness.data.tiny.draw``: the shape at a seeded place and size, on white)."""
    from harness.data.tiny import draw

    return PILImage.fromarray(draw(color, shape, rng).numpy())


def drawing(
    color: str,
    shape: str,
    *,
    size: int,
    radius: int,
    center: tuple[int, int],
    background: tuple[int, ...] = (0, 0, 0, 0),
    outline: int = 0,
) -> PILImage.Image:
    """An RGBA drawing of the shape in the tiny-shapes geometry: ``background`` (default transparent), the shape's
    radius and centre given, and an ``outline`` of that many pixels in a darker shade of its colour."""
    from harness.data.tiny import RGB

    im = PILImage.new("RGBA", (size, size), background)
    pen = ImageDraw.Draw(im)
    fill = RGB[color] + (255,)
    line = tuple(c // 2 for c in RGB[color]) + (255,) if outline else None
    (cx, cy), r = center, radius
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=line, width=outline)
    elif shape == "rectangle":
        pen.rectangle((cx - r, cy - r * 2 // 3, cx + r, cy + r * 2 // 3), fill=fill, outline=line, width=outline)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill, outline=line, width=outline)
    return im


def save_jpeg(image: PILImage.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, format="JPEG", quality=95)


def png_bytes(image: PILImage.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
