"""Image files as data gives them: every mode decoded to the right uint8 RGB pixels, every broken file
a one-line BadImage naming it, decompression bombs refused from the header, and a fuzzer."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.data.files import check_image, decode_image, decode_image_cell
from harness.data.types import Dataset, read_image
from harness.errors import BadImage, HarnessError
from tests.robustness.conftest import one_line


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray, color_type: int, bit_depth: int = 16) -> bytes:
    """A PNG written by hand (PIL cannot write 16-bit colour PNGs): rows of big-endian samples."""
    height, width = pixels.shape[:2]
    sample = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + pixels[y].astype(sample).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_header_only(width: int, height: int) -> bytes:
    """An 8-bit grey PNG that claims ``width`` x ``height`` pixels and holds almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def saved(tmp_path: Path, im: Image.Image, name: str, **options) -> Path:
    path = tmp_path / name
    im.save(path, **options)
    return path


def pixels(path: Path) -> list:
    px = read_image(path)
    assert px.dtype.is_floating_point is False and str(px.dtype) == "torch.uint8"
    assert px.ndim == 3 and px.shape[-1] == 3 and px.is_contiguous()
    return px.tolist()


# ----------------------------------------------------------------------------------------------------
# Modes that must work, with the pixel values they must give


def test_grayscale_is_repeated_into_three_channels(tmp_path):
    im = Image.new("L", (2, 1), 77)
    im.putpixel((1, 0), 200)
    assert pixels(saved(tmp_path, im, "g.png")) == [[[77, 77, 77], [200, 200, 200]]]
    assert pixels(saved(tmp_path, im, "g.jpg", quality=100))[0][0] == [77, 77, 77]
    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    assert pixels(saved(tmp_path, bilevel, "b.png")) == [[[0, 0, 0], [255, 255, 255]]]


def test_cmyk_jpeg_and_tiff_become_rgb(tmp_path):
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red
    im.paste((0, 0, 0, 255), (4, 0, 8, 8))  # black
    for name in ("c.jpg", "c.tif"):
        px = np.array(pixels(saved(tmp_path, im, name)))
        assert np.abs(px[1, 1] - [255, 0, 0]).max() <= 3 and np.abs(px[1, 6] - [0, 0, 0]).max() <= 3


def test_palette_images_keep_their_colours_and_transparent_index_is_white(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * 759)
    im.putdata([0, 1, 2])
    assert pixels(saved(tmp_path, im, "p.png")) == [[[10, 20, 30], [40, 50, 60], [70, 80, 90]]]
    assert pixels(saved(tmp_path, im, "pt.png", transparency=1)) == [[[10, 20, 30], [255, 255, 255], [70, 80, 90]]]
    assert pixels(saved(tmp_path, im, "pt.gif", transparency=1)) == [[[10, 20, 30], [255, 255, 255], [70, 80, 90]]]


def test_16_bit_png_is_scaled_to_8_bit_by_its_high_byte(tmp_path):
    grey = np.array([[0x0000, 0x0100, 0x1234, 0x80FF, 0xFFFF]], dtype=np.uint16)
    (tmp_path / "g16.png").write_bytes(png_bytes(grey, color_type=0))
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # PIL keeps all 16 bits
    assert [p[0] for p in pixels(tmp_path / "g16.png")[0]] == [0x00, 0x01, 0x12, 0x80, 0xFF]
    rgb = np.array([[[0x1234, 0xFF00, 0x80FF], [0xFFFF, 0x0000, 0x00FF]]], dtype=np.uint16)
    (tmp_path / "rgb16.png").write_bytes(png_bytes(rgb, color_type=2))
    assert pixels(tmp_path / "rgb16.png") == [[[0x12, 0xFF, 0x80], [0xFF, 0x00, 0x00]]]  # the same rule
    rgba = np.array([[[0xFFFF, 0, 0, 0xFFFF], [0, 0, 0xFFFF, 0]]], dtype=np.uint16)
    (tmp_path / "rgba16.png").write_bytes(png_bytes(rgba, color_type=6))
    assert pixels(tmp_path / "rgba16.png") == [[[255, 0, 0], [255, 255, 255]]]


def test_16_and_32_bit_tiff_grey(tmp_path):
    im16 = Image.fromarray(np.array([[0, 0x0100, 0xFFFF]], dtype=np.uint16))
    assert [p[0] for p in pixels(saved(tmp_path, im16, "g16.tif"))[0]] == [0, 1, 255]
    im32 = Image.new("I", (3, 1))
    im32.putdata([0x0100, 70_000, -5])  # clipped to 0..65535 first
    assert [p[0] for p in pixels(saved(tmp_path, im32, "g32.tif"))[0]] == [1, 255, 0]


def test_alpha_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(255, 0, 0, 255), (255, 0, 0, 0), (0, 0, 0, 128)])
    opaque, clear, half = pixels(saved(tmp_path, rgba, "a.png"))[0]
    assert opaque == [255, 0, 0] and clear == [255, 255, 255]
    assert all(abs(v - 127) <= 1 for v in half)  # 0 * 128/255 + 255 * 127/255
    la = Image.new("LA", (2, 1))
    la.putdata([(60, 255), (60, 0)])
    assert pixels(saved(tmp_path, la, "la.png")) == [[[60, 60, 60], [255, 255, 255]]]
    keyed = Image.new("RGB", (2, 1), (10, 20, 30))
    keyed.putpixel((1, 0), (1, 2, 3))
    assert pixels(saved(tmp_path, keyed, "k.png", transparency=(1, 2, 3))) == [[[10, 20, 30], [255, 255, 255]]]


@pytest.mark.parametrize("fmt, name", [("WEBP", "x.webp"), ("BMP", "x.bmp"), ("PPM", "x.ppm"), ("GIF", "x.gif")])
def test_other_common_formats(tmp_path, fmt, name):
    options = {"lossless": True} if fmt == "WEBP" else {}
    path = saved(tmp_path, Image.new("RGB", (4, 3), (200, 100, 50)), name, format=fmt, **options)
    px = np.array(pixels(path))
    assert px.shape == (3, 4, 3) and np.abs(px[0, 0] - [200, 100, 50]).max() <= 2


# ----------------------------------------------------------------------------------------------------
# Files that must fail, each with one line naming the file


def jpeg_bytes(size=(64, 48)) -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, "JPEG", quality=90)
    return out.getvalue()


def png_file_bytes(noise: bool = False) -> bytes:
    out = io.BytesIO()
    if noise:
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(out, "PNG")
    else:
        Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


BROKEN = {
    "zero-byte.jpg": (b"", "cannot decode image (empty file)"),
    "text.jpg": (b"this is a text file, not a JPEG\n", "cannot decode image (not an image in a known format"),
    "truncated.jpg": (jpeg_bytes()[:600], "cannot decode image ("),
    "truncated-header.png": (png_file_bytes()[:20], "cannot decode image ("),
    "truncated-data.png": (png_file_bytes(noise=True)[:1500], "cannot decode image ("),
    "corrupt-header.jpg": (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "cannot decode image ("),
    "bad-crc.png": (png_file_bytes()[:29] + b"\x00\x00\x00\x00" + png_file_bytes()[33:], "cannot decode image ("),
    "postscript.jpg": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image in a known format"),
    "svg.png": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not an image in a known format"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_image_files_are_one_line_errors_naming_the_file(tmp_path, name):
    content, expected = BROKEN[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadImage) as excinfo:
        read_image(path)
    message = one_line(excinfo)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert excinfo.value.source == str(path) and excinfo.value.reason in message
    assert check_image(path) == excinfo.value.reason
    assert isinstance(excinfo.value, HarnessError)  # the CLI prints it as one line and exits 2


def test_missing_image_and_folder_named_like_an_image(tmp_path):
    for path, expected in (
        (tmp_path / "gone.jpg", "image file not found"),
        (tmp_path, "is a folder, not an image file"),
    ):
        with pytest.raises(BadImage) as excinfo:
            read_image(path)
        assert one_line(excinfo) == f"{path}: {expected}"
        assert check_image(path) == expected


def test_check_image_is_none_for_a_good_file(tmp_path):
    assert check_image(saved(tmp_path, Image.new("RGB", (2, 2)), "ok.png")) is None


def test_decompression_bombs_are_refused_from_the_header(tmp_path):
    """PIL's limit (PIL.Image.MAX_IMAGE_PIXELS): PIL itself only warns between 1x and 2x of it."""
    for side, pixels_text in ((10_000, "10000x10000 = 100,000,000"), (20_000, "400,000,000")):
        path = tmp_path / f"bomb{side}.png"
        path.write_bytes(png_header_only(side, side))
        with pytest.raises(BadImage) as excinfo:
            read_image(path)
        message = one_line(excinfo)
        assert message.startswith(f"{path}: image is {pixels_text} pixels, over the limit of 89,478,485")
        assert "decompression bomb" in message


def test_the_pixel_limit_is_read_at_decode_time(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert check_image(saved(tmp_path, Image.new("RGB", (10, 10)), "ok.png")) is None
    # Up to twice the limit PIL only warns; the harness refuses, with the size from the header.
    big = saved(tmp_path, Image.new("RGB", (12, 12)), "big.png")
    assert "image is 12x12 = 144 pixels, over the limit of 100" in check_image(big)
    # Beyond twice the limit PIL refuses at open; its pixel count is kept.
    huge = saved(tmp_path, Image.new("RGB", (20, 20)), "huge.png")
    assert "image is 400 pixels, over the limit of 100" in check_image(huge)


def test_dataset_image_raises_bad_image_for_a_bad_file(tmp_path):
    """What --skip-bad-samples catches: Dataset.image(key) raises BadImage naming the file."""
    (tmp_path / "bad.jpg").write_bytes(b"")
    dataset = Dataset("d", "1", {}, {}, image_paths={"k": tmp_path / "bad.jpg"})
    with pytest.raises(BadImage) as excinfo:
        dataset.image("k")
    assert excinfo.value.source == str(tmp_path / "bad.jpg") and "empty file" in excinfo.value.reason


def test_table_cells_with_bad_bytes_or_foreign_paths(tmp_path):
    with pytest.raises(BadImage) as excinfo:
        decode_image_cell({"bytes": b"junk", "path": None}, "hub dataset x image 'val/1'")
    assert one_line(excinfo).startswith("hub dataset x image 'val/1': cannot decode image")
    secret = saved(tmp_path, Image.new("RGB", (2, 2)), "secret.png")
    with pytest.raises(BadImage) as excinfo:
        decode_image_cell({"bytes": None, "path": str(secret)}, "hub dataset x image 'val/1'")
    assert "outside the table's folder and the caches" in one_line(excinfo)
    assert decode_image_cell({"bytes": None, "path": str(secret)}, "w", roots=[tmp_path]).shape == (2, 2, 3)
    with pytest.raises(BadImage, match="image cell is empty"):
        decode_image_cell({"bytes": None, "path": None}, "w")


# ----------------------------------------------------------------------------------------------------
# Fuzzing: whatever the bytes, a decoded uint8 RGB image or a BadImage, never another exception

SEEDS = [png_file_bytes(), jpeg_bytes((16, 12)), png_bytes(np.arange(12, dtype=np.uint16).reshape(3, 4), 0)]


def check_decodes_or_bad_image(data: bytes) -> None:
    try:
        px = decode_image(data, "fuzz")
    except BadImage as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
        return
    assert str(px.dtype) == "torch.uint8" and px.ndim == 3 and px.shape[-1] == 3


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=8),
    cut=st.integers(min_value=0),
)
def test_mutated_images_decode_or_fail_as_bad_image(seed, edits, cut):
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    check_decodes_or_bad_image(bytes(data[: len(data) - cut % len(data)] if cut % 3 == 0 else data))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_decode_or_fail_as_bad_image(data):
    check_decodes_or_bad_image(data)
