"""Reading what data sources are made of: JSON files with one-line errors, datasets tables, images.

Shared by every official-format and hub loader so each reports a bad file the same way.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from harness.errors import BadImage, HarnessError

if TYPE_CHECKING:  # imported where an image is turned into a tensor (to_rgb)
    import torch


def read_json(path: Path, what: str) -> tuple[Any, bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HarnessError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise HarnessError(f"{path}: {what} is a folder, expected a JSON file") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        return json.loads(data), data
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: {what} is not UTF-8 text") from None


def get_field(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """``obj[key]``, checked to be of ``kind`` (bools are not ints), else a one-line error."""
    if not isinstance(obj, dict):
        raise HarnessError(f"{path}: {where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise HarnessError(f"{path}: {where}: missing key '{key}'")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise HarnessError(f"{path}: {where}: '{key}' must be {names}, got {type(value).__name__}")
    return value


# ----------------------------------------------------------------------------------------------------
# Paths named by data files


def safe_join(
    root: Path, relative: Any, where: str, what: str = "image", *, base: Path | None = None, resolve: bool = False
) -> Path:
    """``base / relative`` (``base`` defaults to ``root``) for a path read from a data file, refused
    unless it stays inside ``root``.

    The one check every loader applies to a file name it reads from an annotation, split, episode or
    manifest file. Refused, with one line naming ``where`` and the value: a non-string or empty
    value, a NUL byte, an absolute path (``/etc/passwd``, ``C:/x``, ``\\\\server\\x``), and any path
    that leaves ``root`` once ``..`` is applied (``../../etc/passwd``; ``a/../b.jpg`` stays inside and
    is allowed). Backslashes count as separators. The check is on the text, so symlinks inside
    ``root`` (an image folder linked to a shared disk) are followed; with ``resolve=True`` the real
    path must also lie inside the real ``root``.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise HarnessError(f"{where}: expected a relative {what} path, got {relative!r:.60}")
    if "\0" in relative:
        raise HarnessError(f"{where}: {what} path {relative!r:.60} holds a NUL byte")
    text = relative.replace("\\", "/")
    if text.startswith("/") or (text[:1].isalpha() and text[1:2] == ":") or os.path.isabs(relative):
        raise HarnessError(f"{where}: {what} {relative!r:.60} is outside {root} (absolute paths are not allowed)")
    base = root if base is None else base
    top, full = os.path.abspath(root), os.path.abspath(os.path.join(base, text))
    if full != top and not full.startswith(top.rstrip(os.sep) + os.sep):
        raise HarnessError(f"{where}: {what} {relative!r:.60} is outside {root}")
    normal = posixpath.normpath(text)
    path = Path(full) if normal.startswith("..") else base / normal
    if resolve and not inside(Path(root).resolve(), path):
        raise HarnessError(f"{where}: {what} {relative!r:.60} is outside {root} (through a symlink)")
    return path


def inside(real_root: Path, path: Path) -> bool:
    """Whether ``path``, with every symlink resolved, lies inside ``real_root`` (already resolved)."""
    try:
        path.resolve().relative_to(real_root)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


# ----------------------------------------------------------------------------------------------------
# Images

# What is decoded: the raster formats datasets use. Anything else PIL could open is refused, in
# particular EPS/PS (PIL runs Ghostscript on them) and rarely used formats with a history of bugs.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM")  # JPEG covers MPO
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "PA"})
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def to_rgb(im: PILImage.Image) -> torch.Tensor:
    """A decoded PIL image as uint8 H x W x 3 RGB, whatever its mode. The rules:

    * grey (``L``, ``1``), palette (``P``), ``CMYK``, ``YCbCr``: PIL's conversion to RGB (grey v ->
      (v, v, v); CMYK (c, m, y, k) -> (255 - c - k, ...) clipped, as PIL does).
    * transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``, or a ``P``/``L``/``RGB``
      image with a transparent colour): composited on white, so transparent pixels are white, opaque
      ones keep their colour and half-transparent ones are blended (out = a*c + (1-a)*255).
    * 16-bit grey (``I;16*``, and ``I``, the mode 32-bit integer and older 16-bit files open in):
      the high byte, ``v >> 8`` (values clipped to 0..65535 first). 16-bit RGB(A) PNGs are already
      read that way by PIL, so every 16-bit image is reduced alike.
    * 32-bit float (``F``): PIL's conversion (values taken as 0..255, clipped).
    """
    import torch

    if im.mode in _WIDE_MODES:
        wide = np.asarray(im).astype(np.int64)
        grey = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return torch.from_numpy(np.repeat(grey[..., None], 3, axis=-1))
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        background = PILImage.new("RGB", im.size, (255, 255, 255))
        rgba = im.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        im = background
    return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def _bomb_reason(pixels: int, size: str) -> str:
    limit = PILImage.MAX_IMAGE_PIXELS
    return (
        f"image is {size}{pixels:,} pixels, over the limit of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS); "
        f"refused as a possible decompression bomb"
    )


def _decode(source: Path | bytes) -> torch.Tensor:
    with warnings.catch_warnings():  # PIL warns between 1x and 2x its pixel limit; we refuse instead
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        im = PILImage.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=IMAGE_FORMATS)
    with im:
        limit = PILImage.MAX_IMAGE_PIXELS
        width, height = im.size
        if limit and width * height > limit:
            raise BadImage("", _bomb_reason(width * height, f"{width}x{height} = "))
        im.load()
        return to_rgb(im)


def decode_image(source: Path | bytes, where: str | Path) -> torch.Tensor:
    """Decode an image file (or its bytes) to uint8 H x W x 3 RGB (see ``to_rgb`` for every mode).

    Any problem is a ``BadImage`` naming ``where``: a missing file, an empty or non-image file, a
    truncated or corrupt one, a format outside ``IMAGE_FORMATS``, or more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS`` (checked from the header, before anything is decoded).
    """
    try:
        return _decode(source)
    except BadImage as exc:
        raise BadImage(where, exc.reason) from None
    except FileNotFoundError:
        raise BadImage(where, "image file not found") from None
    except IsADirectoryError:
        raise BadImage(where, "is a folder, not an image file") from None
    except PermissionError:
        raise BadImage(where, "cannot read image (permission denied)") from None
    except PILImage.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise BadImage(where, _bomb_reason(int(pixels.group(1)), "") if pixels else str(exc)) from None
    except UnidentifiedImageError:
        empty = source == b"" if isinstance(source, bytes) else _is_empty(source)
        what = "empty file" if empty else f"not an image in a known format ({', '.join(IMAGE_FORMATS)})"
        raise BadImage(where, f"cannot decode image ({what})") from None
    except MemoryError:
        raise BadImage(where, "cannot decode image (out of memory)") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file can fail anywhere inside a decoder
        raise BadImage(where, f"cannot decode image ({first_line(exc)})") from None


def _is_empty(path: Path) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


def check_image(path: Path) -> str | None:
    """Why the image file at ``path`` cannot be used (one line), or None when it decodes."""
    try:
        decode_image(path, path)
    except BadImage as exc:
        return exc.reason
    return None


def decode_image_cell(value: Any, where: str, roots: Sequence[Path] = ()) -> torch.Tensor:
    """Decode an undecoded datasets Image cell ({"bytes", "path"}).

    A cell normally carries its bytes (parquet on the hub, ``save_to_disk`` folders). A cell with
    only a path is read only where that path lies inside one of ``roots`` (the table's own folder,
    the datasets and hub caches): a table must not name arbitrary files on this machine.
    """
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else None
    if data is not None:
        if not isinstance(data, (bytes, bytearray)):
            raise BadImage(where, f"image cell bytes are {type(data).__name__}, not bytes")
        return decode_image(bytes(data), where)
    if not path or not isinstance(path, str):
        raise BadImage(where, "image cell is empty")
    if not any(inside(Path(root).resolve(), Path(path)) for root in roots):
        raise BadImage(where, f"image cell names the file {path!r:.80}, outside the table's folder and the caches")
    return decode_image(Path(path), f"{where} ({path})")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def open_tables(dataset_id: str, splits: Mapping[str, str]) -> dict[str, Any]:
    """harness split -> datasets.Dataset, from a save_to_disk folder or from the hub."""
    import datasets

    local = Path(dataset_id).expanduser()
    tables: dict[str, Any] = {}
    if local.is_dir():
        try:
            loaded = datasets.load_from_disk(str(local))
        except Exception as exc:  # noqa: BLE001 - any failure here is a bad folder, told in one line
            raise HarnessError(f"{local}: not a saved datasets folder ({first_line(exc)})") from None
        if isinstance(loaded, datasets.DatasetDict):
            for split, hub_split in splits.items():
                if hub_split not in loaded:
                    raise HarnessError(f"{local}: no split '{hub_split}' for {split} (has {', '.join(loaded)})")
                tables[split] = loaded[hub_split]
        elif len(splits) == 1:
            tables[next(iter(splits))] = loaded
        else:
            raise HarnessError(f"{local}: holds a single table, cannot give splits {', '.join(splits)}")
        return tables
    for split, hub_split in splits.items():
        try:
            tables[split] = datasets.load_dataset(dataset_id, split=hub_split)
        except Exception as exc:  # noqa: BLE001 - network, auth, missing repo or split: one line each
            where = f"hub dataset {dataset_id} split '{hub_split}'"
            raise HarnessError(f"{where}: cannot load ({first_line(exc)})") from None
    return tables


def undecoded_images(table: Any, column: str) -> Any:
    """Only the image column of a datasets table, left as bytes: decoded one image at a time, on use."""
    import datasets

    return table.select_columns([column]).cast_column(column, datasets.Image(decode=False))


def table_image_loader(
    name: str, dataset_id: str, tables: Mapping[str, Any], locations: Mapping[str, tuple[str, int]], column: str
) -> Any:
    """An image loader for ``Dataset.image_loader``: key -> the (split, row) cell of ``tables``."""
    roots = cell_roots(dataset_id)

    def load_image(key: str) -> torch.Tensor:
        if key not in locations:
            raise HarnessError(f"dataset {name}: no image '{key}'")
        split, index = locations[key]
        return decode_image_cell(tables[split][index][column], f"hub dataset {dataset_id} image '{key}'", roots)

    return load_image


def cell_roots(dataset_id: str) -> list[Path]:
    """Where a path-only image cell of this table may point: its own folder, the datasets and hub caches."""
    import datasets.config
    from huggingface_hub import constants

    local = Path(dataset_id).expanduser()
    roots = [Path(datasets.config.HF_DATASETS_CACHE), Path(constants.HF_HUB_CACHE)]
    return ([local] if local.is_dir() else []) + roots
