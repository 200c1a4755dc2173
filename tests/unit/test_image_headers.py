"""The Pillow-free header reader: it agrees with Pillow on every image it answers for, and never raises."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images import imaging
from imagegen_mcp.images.headers import StillImage, read_still

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "function"


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def _gradient(mode: str, size: tuple[int, int] = (37, 23)) -> Image.Image:
    img = Image.linear_gradient("L").resize(size).convert("RGBA")
    if mode == "P":
        return img.convert("RGB").quantize(16)
    return img.convert(mode)


def _red() -> Image.Image:
    """A second frame unlike the first (equal frames are merged into one by the encoders)."""
    return Image.new("RGB", (37, 23), (255, 0, 0))


def _text_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by a model")
    return info


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

# (name, bytes, whether the header reader must answer for it itself rather than leave it to Pillow)
CORPUS: list[tuple[str, bytes, bool]] = [
    *((f"png-{m}", _encode(_gradient(m), "PNG"), True) for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")),
    ("png-P-4bit", _encode(_gradient("P"), "PNG", bits=4), True),
    ("png-text-dpi", _encode(_gradient("RGB"), "PNG", pnginfo=_text_info(), dpi=(300, 300)), True),
    ("png-P-transparency", _encode(_gradient("P"), "PNG", transparency=3), True),
    ("png-L-transparency", _encode(_gradient("L"), "PNG", transparency=7), True),
    ("png-RGB-transparency", _encode(_gradient("RGB"), "PNG", transparency=(1, 2, 3)), True),
    ("png-exif", _encode(_gradient("RGB"), "PNG", exif=Image.Exif()), True),
    ("png-icc", _encode(_gradient("RGB"), "PNG", icc_profile=_SRGB), False),
    ("png-large", _encode(Image.new("RGB", (4000, 3000)), "PNG"), True),
    ("apng", _encode(_gradient("RGB"), "PNG", save_all=True, append_images=[_red()]), False),
    *((f"jpeg-{m}", _encode(_gradient(m), "JPEG"), True) for m in ("L", "RGB", "CMYK")),
    ("jpeg-progressive", _encode(_gradient("RGB"), "JPEG", progressive=True, optimize=True), True),
    ("jpeg-444-q95", _encode(_gradient("RGB"), "JPEG", quality=95, subsampling=0), True),
    ("jpeg-icc-comment", _encode(_gradient("RGB"), "JPEG", icc_profile=_SRGB, comment=b"hello"), True),
    ("jpeg-dpi", _encode(_gradient("RGB"), "JPEG", dpi=(72, 72)), True),
    ("jpeg-exif", _encode(_gradient("RGB"), "JPEG", exif=Image.Exif()), False),
    ("jpeg-mpo", _encode(_gradient("RGB"), "MPO", save_all=True, append_images=[_red()]), False),
    ("webp-lossy", _encode(_gradient("RGB"), "WEBP"), True),
    ("webp-lossless", _encode(_gradient("RGB"), "WEBP", lossless=True), True),
    ("webp-lossy-alpha", _encode(_gradient("RGBA"), "WEBP"), True),
    ("webp-lossless-alpha", _encode(_gradient("RGBA"), "WEBP", lossless=True), True),
    ("webp-icc-exif", _encode(_gradient("RGB"), "WEBP", icc_profile=_SRGB, exif=b"Exif\0\0MM"), True),
    ("webp-animated", _encode(_gradient("RGB"), "WEBP", save_all=True, append_images=[_red()]), False),
    ("gif-P", _encode(_gradient("P"), "GIF"), True),
    ("gif-L", _encode(_gradient("L"), "GIF"), True),
    ("gif-transparency-comment", _encode(_gradient("P"), "GIF", transparency=2, comment=b"hi"), True),
    ("gif-animated", _encode(_gradient("P"), "GIF", save_all=True, append_images=[_red()], loop=0), False),
]


def _pillow(data: bytes) -> tuple[str, int, int, int] | None:
    """What the Pillow probe makes of the bytes: (format, width, height, frames), or None if it refuses them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with imaging._open(data) as img:
                return str(img.format).lower(), img.width, img.height, int(getattr(img, "n_frames", 1) or 1)
    except Exception:
        return None


def _agrees(data: bytes) -> StillImage | None:
    still = read_still(data, imaging.sniff_format(data))
    if still is not None:
        assert _pillow(data) == (still.format, still.width, still.height, 1), still
    return still


@pytest.mark.parametrize(("name", "data", "fast"), CORPUS, ids=[c[0] for c in CORPUS])
def test_answers_only_what_pillow_says(name: str, data: bytes, fast: bool) -> None:
    still = _agrees(data)
    assert (still is not None) is fast
    if name.startswith(("apng", "webp-animated", "gif-animated", "jpeg-mpo")):
        assert _pillow(data)[3] > 1  # type: ignore[index]  # what makes the reader step aside


@pytest.mark.parametrize(("name", "data"), [(n, d) for n, d, _ in CORPUS if len(d) < 20_000])
def test_every_truncation_is_refused_or_read_as_pillow_reads_it(name: str, data: bytes) -> None:
    for end in range(len(data)):
        _agrees(data[:end])


@pytest.mark.parametrize(("name", "data"), [(n, d) for n, d, _ in CORPUS], ids=[c[0] for c in CORPUS])
def test_corrupted_headers_never_get_a_size_pillow_disagrees_with(name: str, data: bytes) -> None:
    rng = random.Random(name)
    for _ in range(400):
        broken = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.randrange(min(len(broken), 160))
            broken[at] = rng.choice((0, 1, 0xFF, 0x80, rng.randrange(256), broken[at] ^ 1 << rng.randrange(8)))
        _agrees(bytes(broken))


def test_hostile_headers() -> None:
    png = _encode(_gradient("RGB"), "PNG")
    cases = [
        b"",
        b"\x89PNG\r\n\x1a\n",
        png[:8] + b"\xff\xff\xff\xff" + png[12:],  # IHDR of an absurd length
        png[:16] + b"\0\0\0\0" + png[20:],  # zero width (its CRC no longer matches either)
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xc0\x00\x02\xff\xda\x00\x02",  # empty frame header
        b"\xff\xd8" + b"\xff\xfe\xff\xff" * 4,  # a comment longer than the file
        b"RIFF\xff\xff\xff\x7fWEBPVP8 ",
        b"RIFF\x0c\x00\x00\x00WEBPVP8X\x00\x00\x00\x00",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00",  # palette missing
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",  # no image at all
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x05\x00\x05\x00\x00\x02\x00;",  # frame past screen
    ]
    for data in cases:
        assert _agrees(data) is None, data


def test_output_info_keeps_its_errors() -> None:
    with pytest.raises(ImageGenError) as err:
        imaging.output_info(b"<html>not an image</html>", max_pixels=10**6)
    assert err.value.code == ErrorCode.UPSTREAM_ERROR
    big = _encode(Image.new("RGB", (2000, 1000)), "PNG")
    with pytest.raises(ImageGenError, match=r"2000x1000 pixels; at most 1000000") as err:
        imaging.output_info(big, max_pixels=10**6)
    assert err.value.code == ErrorCode.UPSTREAM_ERROR
    with pytest.raises(ImageGenError) as err:
        imaging.output_info(big[:40], max_pixels=10**7)  # truncated: left to Pillow, which refuses it
    assert err.value.code == ErrorCode.UPSTREAM_ERROR


@pytest.mark.parametrize(("name", "data"), [(n, d) for n, d, _ in CORPUS], ids=[c[0] for c in CORPUS])
def test_output_info_matches_the_pillow_probe(name: str, data: bytes) -> None:
    info = imaging.output_info(data, max_pixels=10**8)
    assert info == imaging.probe_image(data, max_pixels=10**8)


def test_output_info_of_a_plain_png_does_not_import_pillow(tmp_path: Path) -> None:
    images = {n: d.hex() for n, d, fast in CORPUS if fast and len(d) < 100_000}
    (tmp_path / "images.json").write_text(json.dumps(images), encoding="utf-8")
    script = (
        "import json, sys\n"
        "from imagegen_mcp.images.imaging import finalize_output, output_info\n"
        "for name, hexed in json.load(open(sys.argv[1])).items():\n"
        "    data = bytes.fromhex(hexed)\n"
        "    info = output_info(data, max_pixels=10**8)\n"
        "    finalize_output(data, output_format=info.format, max_pixels=10**8)\n"
        "print(sorted(m for m in sys.modules if m == 'PIL' or m.startswith('PIL.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "images.json")],
        cwd=FUNCTION_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
