"""Reading what data sources are made of: JSON files with one-line errors, datasets tables, images.

Shared by every official-format and hub loader so each reports a bad file the same way.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage

from harness.errors import HarnessError


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


def to_rgb(im: PILImage.Image) -> torch.Tensor:
    """uint8 H x W x 3, transparent pixels on white (as ``read_image`` does for files)."""
    if im.mode in ("RGBA", "LA", "P"):
        background = PILImage.new("RGB", im.size, (255, 255, 255))
        rgba = im.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        im = background
    return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def decode_image_cell(value: Any, where: str) -> torch.Tensor:
    """Decode an undecoded datasets Image cell ({"bytes", "path"})."""
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else None
    if data is None and not path:
        raise HarnessError(f"{where}: image cell is empty")
    try:
        with PILImage.open(io.BytesIO(data) if data is not None else path) as im:
            im.load()
            return to_rgb(im)
    except FileNotFoundError:
        raise HarnessError(f"{where}: image file {path} not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise HarnessError(f"{where}: cannot decode image ({exc})") from None


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

    def load_image(key: str) -> torch.Tensor:
        if key not in locations:
            raise HarnessError(f"dataset {name}: no image '{key}'")
        split, index = locations[key]
        return decode_image_cell(tables[split][index][column], f"hub dataset {dataset_id} image '{key}'")

    return load_image
