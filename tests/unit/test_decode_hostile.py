"""Hostile input images against imaging.py: bombs, truncation, polyglots, animation, EXIF, foreign formats."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegen_mcp.errors import ImageGenError
from imagegen_mcp.images.imaging import load_input_image, probe_image, sniff_format

MAX_PIXELS = 50_000_000
MAX_BYTES = 20 * 1024 * 1024


def load(data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES):  # type: ignore[no-untyped-def]
    return load_input_image(data, max_pixels=max_pixels, max_bytes=max_bytes)


def refused(data: bytes, **kw: int) -> ImageGenError:
    with pytest.raises(ImageGenError) as info:
        load(data, **kw)
    assert info.value.code.value == "invalid_argument", info.value
    return info.value


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def quadrants(w: int = 64, h: int = 48, mode: str = "RGB") -> Image.Image:
    """Red top-left quadrant on blue: shows where the top-left corner went after a transform."""
    img = Image.new("RGB", (w, h), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, w // 2, h // 2))
    return img.convert(mode) if mode != "RGB" else img


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_header_claiming(width: int, height: int, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat or zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def rgb_at(data: bytes, xy: tuple[int, int]) -> tuple[int, int, int]:
    r, g, b = decoded(data).convert("RGB").getpixel(xy)[:3]  # type: ignore[index, misc]
    return r, g, b


def close_to(color: tuple[int, int, int], expected: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(color, expected, strict=True))


# ---------------------------------------------------------------------------------------------------------------------
# Decompression bombs: refused from the header, before any pixel is decoded
# ---------------------------------------------------------------------------------------------------------------------


def _jpeg_claiming(width: int, height: int) -> bytes:
    real = encode(Image.new("RGB", (8, 8)), "JPEG")
    sof = real.index(b"\xff\xc0")
    return real[: sof + 5] + struct.pack(">HH", height, width) + real[sof + 9 :]


def _gif_claiming(width: int, height: int) -> bytes:
    real = encode(Image.new("P", (8, 8)), "GIF")
    return real[:6] + struct.pack("<HH", width, height) + real[10:]


def _webp_claiming(width: int, height: int) -> bytes:
    vp8x = bytes([0x10, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


BOMBS = {
    "png-100k-x-100k": png_header_claiming(100_000, 100_000),
    "png-2^31-wide": png_header_claiming(2**31 - 1, 1),
    "png-10k-x-10k": png_header_claiming(10_000, 10_000),
    "png-8k-x-8k": png_header_claiming(8_000, 8_000),
    "jpeg-65500-square": _jpeg_claiming(65_500, 65_500),
    "gif-65535-square": _gif_claiming(65_535, 65_535),
    "webp-16k-square": _webp_claiming(16_384, 16_384),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_pixel_bombs_are_refused_from_the_header(name: str) -> None:
    data = BOMBS[name]
    tracemalloc.start()
    started = time.monotonic()
    try:
        err = refused(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "pixel" in err.message or "corrupt" in err.message
    assert time.monotonic() - started < 2.0
    assert peak < 20 * 1024 * 1024, f"{name} allocated {peak} bytes while being refused"


def test_compressed_bomb_under_a_lower_limit_is_refused_without_decoding() -> None:
    rows = b"".join(b"\x00" + bytes(3 * 6000) for _ in range(6000))  # 108 MB of pixels in ~100 KB
    data = png_header_claiming(6000, 6000, zlib.compress(rows, 9))
    assert len(data) < 200_000
    tracemalloc.start()
    try:
        err = refused(data, max_pixels=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "6000x6000" in err.message
    assert peak < 20 * 1024 * 1024


def test_pixel_limit_is_the_callers() -> None:
    data = encode(quadrants(100, 100), "PNG")
    assert probe_image(data, max_pixels=10_000).width == 100
    assert "100x100" in refused(data, max_pixels=9_999).message


def test_byte_limit() -> None:
    data = encode(quadrants(), "PNG")
    assert load(data, max_bytes=len(data)).width == 64
    refused(data, max_bytes=len(data) - 1)


# ---------------------------------------------------------------------------------------------------------------------
# Formats outside the allowlist, judged by bytes
# ---------------------------------------------------------------------------------------------------------------------

FOREIGN = {
    "bmp": encode(Image.new("RGB", (4, 4)), "BMP"),
    "tiff": encode(Image.new("RGB", (4, 4)), "TIFF"),
    "ico": encode(Image.new("RGB", (16, 16)), "ICO"),
    "pdf": b"%PDF-1.7\n1 0 obj<<>>endobj\n",
    "svg": b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><script>alert(1)</script></svg>",
    "svg-xml": b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
    "html": b"<!doctype html><img src=x onerror=alert(1)>",
    "zip": b"PK\x03\x04" + bytes(26),
    "psd": b"8BPS" + bytes(22),
    "empty": b"",
    "one-byte": b"\x89",
}


@pytest.mark.parametrize("name", list(FOREIGN))
def test_foreign_formats_are_refused_by_their_bytes(name: str) -> None:
    assert sniff_format(FOREIGN[name]) is None
    assert "PNG, JPEG, WebP or GIF" in refused(FOREIGN[name]).message


def test_a_bmp_is_not_accepted_by_pretending_in_its_name_or_prefix() -> None:
    bmp = FOREIGN["bmp"]
    refused(b"\x89PNG\r\n\x1a\n" + bmp)  # PNG magic, then not PNG chunks
    refused(b"GIF89a" + bmp)


# ---------------------------------------------------------------------------------------------------------------------
# Truncated and corrupt files
# ---------------------------------------------------------------------------------------------------------------------

GOOD = {
    "png": encode(quadrants(256, 256), "PNG"),
    "jpeg": encode(quadrants(256, 256), "JPEG", quality=90),
    "webp": encode(quadrants(256, 256), "WEBP", quality=80),
    "gif": encode(quadrants(256, 256).convert("P"), "GIF"),
}


@pytest.mark.parametrize("fmt", list(GOOD))
@pytest.mark.parametrize("keep", [1, 8, 12, 20, 33])
def test_files_cut_inside_the_header_are_refused(fmt: str, keep: int) -> None:
    refused(GOOD[fmt][:keep])


@pytest.mark.parametrize(
    "fmt",
    ["png", "jpeg", "webp", "gif"],
)
def test_files_cut_inside_the_pixel_data_are_refused(fmt: str) -> None:
    data = GOOD[fmt]
    refused(data[: len(data) // 2])


@given(st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_images_never_raise_anything_but_invalid_argument(data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(sorted(GOOD)))
    blob = bytearray(GOOD[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(blob)))
    try:
        result = load(bytes(blob[:cut]), max_pixels=1_000_000)
    except ImageGenError as e:
        assert e.code.value == "invalid_argument"
    else:
        assert 0 < result.width * result.height <= 1_000_000
        assert sniff_format(result.data) is not None


@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP"]), st.binary())
@settings(max_examples=200, deadline=None)
def test_magic_bytes_then_garbage(magic: bytes, tail: bytes) -> None:
    try:
        load(magic + tail, max_pixels=1_000_000)
    except ImageGenError as e:
        assert e.code.value == "invalid_argument"


# ---------------------------------------------------------------------------------------------------------------------
# Polyglots
# ---------------------------------------------------------------------------------------------------------------------


def test_zip_or_html_with_an_image_inside_is_refused() -> None:
    png = encode(quadrants(), "PNG")
    refused(b"PK\x03\x04" + bytes(26) + png)  # zip first: judged by the leading bytes
    refused(b"<html><!--" + png + b"-->")


def test_gif_with_script_comment_is_reencoded() -> None:
    gif = encode(quadrants().convert("P"), "GIF", comment=b"<script>alert(1)</script>")
    result = load(gif)
    assert result.mime_type == "image/png"
    assert b"<script>" not in result.data


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_trailing_payload_after_the_image_is_not_forwarded(fmt: str) -> None:
    payload = b"PK\x03\x04<html><script>alert(1)</script></html>"
    result = load(encode(quadrants(), fmt.upper()) + payload)
    assert payload not in result.data


# ---------------------------------------------------------------------------------------------------------------------
# Multi-frame inputs: the first frame, deliberately, as a still PNG
# ---------------------------------------------------------------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})],  # PNG with several frames is APNG
    ids=["gif", "webp", "apng"],
)
def test_animated_inputs_become_their_first_frame(fmt: str, options: dict[str, object]) -> None:
    first, *rest = _frames()
    data = encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0, **options)
    assert probe_image(data, max_pixels=MAX_PIXELS).frames == 3
    result = load(data)
    assert (result.mime_type, result.width, result.height) == ("image/png", 40, 30)
    out = decoded(result.data)
    assert getattr(out, "n_frames", 1) == 1
    assert close_to(rgb_at(result.data, (20, 15)), (255, 0, 0))


def test_animated_frame_count_does_not_bypass_the_pixel_limit() -> None:
    first, *rest = _frames()
    data = encode(first, "GIF", save_all=True, append_images=rest)
    refused(data, max_pixels=40 * 30 - 1)


# ---------------------------------------------------------------------------------------------------------------------
# EXIF orientation applied; metadata stripped from what passes through
# ---------------------------------------------------------------------------------------------------------------------


def _exif(orientation: int, **tags: object) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    for tag, value in tags.items():
        exif[int(tag.removeprefix("t"))] = value
    return exif.tobytes()


@pytest.mark.parametrize(
    ("fmt", "orientation", "size", "red_at"),
    [
        ("JPEG", 6, (48, 64), (40, 8)),  # rotate 90° clockwise: top-left goes to top-right
        ("JPEG", 8, (48, 64), (8, 56)),  # rotate 90° counter-clockwise: top-left goes to bottom-left
        ("JPEG", 3, (64, 48), (56, 40)),  # rotate 180°: top-left goes to bottom-right
        ("WEBP", 6, (48, 64), (40, 8)),
        ("PNG", 6, (48, 64), (40, 8)),
    ],
)
def test_exif_orientation_is_applied(
    fmt: str, orientation: int, size: tuple[int, int], red_at: tuple[int, int]
) -> None:
    data = encode(quadrants(64, 48), fmt, exif=_exif(orientation))
    result = load(data)
    assert (result.width, result.height) == size
    assert decoded(result.data).size == size
    assert close_to(rgb_at(result.data, red_at), (255, 0, 0)), rgb_at(result.data, red_at)
    assert decoded(result.data).getexif().get(0x0112) in (None, 1)


def test_upright_jpeg_passes_through_without_exif_or_comments() -> None:
    gps_and_owner = _exif(1, t315="Jane Doe", t305="Secret Camera App")  # Artist, Software
    data = encode(quadrants(), "JPEG", exif=gps_and_owner, comment=b"private note")
    assert b"Jane Doe" in data and b"private note" in data
    result = load(data)
    assert result.mime_type == "image/jpeg"
    assert b"Jane Doe" not in result.data and b"private note" not in result.data
    assert decoded(result.data).size == (64, 48)


def test_png_text_chunks_are_stripped() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_itxt("Comment", "private note")
    data = encode(quadrants(), "PNG", pnginfo=info)
    result = load(data)
    assert b"Jane Doe" not in result.data and b"private note" not in result.data
    assert rgb_at(result.data, (5, 5)) == (255, 0, 0)


def test_rotated_cmyk_jpeg_is_accepted() -> None:
    data = encode(quadrants(64, 48, "CMYK"), "JPEG", exif=_exif(6))
    result = load(data)
    assert (result.width, result.height) == (48, 64)


def test_operator_pixel_limit_above_pillows_default_is_honoured() -> None:
    assert probe_image(png_header_claiming(10_000, 10_000), max_pixels=200_000_000).width == 10_000
