"""Sniffing, probing, transcoding, previews and container-level metadata stripping."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.imaging import (
    finalize_output,
    load_input_image,
    make_preview,
    probe_image,
    sniff_format,
    strip_metadata,
)


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def _exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretCam"  # Make
    return exif


def test_sniff_by_bytes_not_names() -> None:
    assert sniff_format(_encode(Image.new("RGB", (2, 2)), "PNG")) == "png"
    assert sniff_format(_encode(Image.new("RGB", (2, 2)), "JPEG")) == "jpeg"
    assert sniff_format(_encode(Image.new("RGB", (2, 2)), "WEBP")) == "webp"
    assert sniff_format(_encode(Image.new("P", (2, 2)), "GIF")) == "gif"
    assert sniff_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert sniff_format(_encode(Image.new("RGB", (2, 2)), "BMP")) is None


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_formats_outside_the_allowlist_are_refused(fmt: str) -> None:
    with pytest.raises(ImageGenError) as info:
        probe_image(_encode(Image.new("RGB", (4, 4)), fmt), max_pixels=10_000)
    assert info.value.code == ErrorCode.INVALID_ARGUMENT


def test_pixel_limit_is_checked_from_the_header() -> None:
    data = _encode(Image.new("1", (5000, 5000)), "PNG")
    with pytest.raises(ImageGenError, match="pixels"):
        load_input_image(data, max_pixels=1_000_000, max_bytes=10**7)


def test_truncated_image_is_refused() -> None:
    data = _encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    with pytest.raises(ImageGenError):
        probe_image(data[:20], max_pixels=10**6)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_metadata_is_stripped_without_changing_pixels(fmt: str) -> None:
    img = Image.new("RGB", (32, 16), (200, 10, 10))
    data = _encode(img, fmt, exif=_exif().tobytes())
    assert b"SecretCam" in data
    stripped = strip_metadata(data, fmt.lower())
    assert b"SecretCam" not in stripped
    with Image.open(io.BytesIO(stripped)) as out:
        out.load()
        assert out.size == (32, 16)
        assert not out.getexif()


def test_strip_returns_same_object_when_nothing_to_drop() -> None:
    data = _encode(Image.new("RGB", (8, 8)), "PNG")
    assert strip_metadata(data, "png") is data


def test_exif_orientation_is_applied_to_inputs() -> None:
    data = _encode(Image.new("RGB", (40, 20), (0, 0, 255)), "JPEG", exif=_exif(6).tobytes())
    image = load_input_image(data, max_pixels=10**6, max_bytes=10**6)
    assert (image.width, image.height) == (20, 40)
    assert image.mime_type == "image/png"


def test_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("P", (10, 10), i) for i in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    image = load_input_image(out.getvalue(), max_pixels=10**6, max_bytes=10**6)
    assert image.mime_type == "image/png"
    with Image.open(io.BytesIO(image.data)) as first:
        assert getattr(first, "n_frames", 1) == 1


def test_finalize_transcodes_and_rejects_non_images() -> None:
    png = _encode(Image.new("RGBA", (30, 20), (0, 0, 0, 0)), "PNG")
    final = finalize_output(png, output_format="jpeg", max_pixels=10**6)
    assert final.mime_type == "image/jpeg" and (final.width, final.height) == (30, 20)
    assert sniff_format(final.data) == "jpeg"
    with pytest.raises(ImageGenError) as info:
        finalize_output(b"<html>oops</html>", output_format="png", max_pixels=10**6)
    assert info.value.code == ErrorCode.UPSTREAM_ERROR


def test_preview_is_a_small_jpeg() -> None:
    import os

    noisy = Image.frombytes("RGB", (2048, 1024), os.urandom(2048 * 1024 * 3))
    for fmt in ("PNG", "JPEG", "WEBP"):
        data, mime = make_preview(_encode(noisy, fmt), max_px=384)
        assert mime == "image/jpeg" and len(data) <= 40_000, fmt
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and img.size == (384, 192), fmt


def test_preview_keeps_transparency_as_webp_and_opaque_rgba_becomes_jpeg() -> None:
    clear = Image.new("RGBA", (800, 600), (200, 30, 30, 0))
    clear.paste((10, 10, 200, 255), (100, 100, 400, 400))
    data, mime = make_preview(_encode(clear, "PNG"), max_px=384)
    assert mime == "image/webp"
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "WEBP" and img.mode == "RGBA" and img.size == (384, 288)
        assert img.getchannel("A").getextrema()[0] == 0
    opaque, mime = make_preview(_encode(Image.new("RGBA", (300, 100), (1, 2, 3, 255)), "PNG"), max_px=384)
    assert mime == "image/jpeg" and opaque[:3] == b"\xff\xd8\xff"
    grey, mime = make_preview(_encode(Image.new("L", (100, 50), 128), "PNG"), max_px=384)
    assert mime == "image/jpeg" and Image.open(io.BytesIO(grey)).size == (100, 50)  # never enlarged


def test_preview_of_incompressible_noise_still_fits_the_budget() -> None:
    import os

    noise = Image.frombytes("RGB", (1024, 1024), os.urandom(1024 * 1024 * 3))
    data, _ = make_preview(_encode(noise, "PNG"), max_px=384)
    assert len(data) <= 40_000
    clear_noise = Image.frombytes("RGBA", (1024, 1024), os.urandom(1024 * 1024 * 4))
    data, mime = make_preview(_encode(clear_noise, "PNG"), max_px=384)
    assert mime == "image/webp" and len(data) <= 40_000
