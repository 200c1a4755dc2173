"""Image bytes handling: sniffing, safe input decoding, output transcoding, metadata stripping, previews."""

from __future__ import annotations

import io
import struct
import threading
from dataclasses import dataclass

from ..errors import ErrorCode, ImageGenError, invalid
from .headers import read_still
from .types import InputImage

FORMAT_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
INPUT_FORMATS = frozenset(FORMAT_MIME)  # what callers may send; anything else is refused by its bytes
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    frames: int

    @property
    def mime_type(self) -> str:
        return FORMAT_MIME[self.format]


# Bytes of memory per pixel a decode holds at its peak: Pillow keeps RGB/RGBA frames as 4 bytes a pixel, and its
# WebP decoder holds libwebp's canvas plus a raw copy besides (measured: ~11.4 B/px for a 7000x7000 WebP).
FRAME_BYTES_PER_PIXEL = 4
_DECODER_EXTRA_PER_PIXEL = {"webp": 8, "gif": 1, "png": 0, "jpeg": 0}
JPEG_CHECK_SCALE = 8  # JPEGs are checked at 1/8 scale (libjpeg's DCT scaling decodes every byte for it)


def decode_cost(info: ImageInfo, *, frames: int = 1, draft_scale: int = 1) -> int:
    """Peak bytes of decoding `info` and holding `frames` full-size copies of it (JPEGs decoded at 1/draft_scale)."""
    pixels = info.width * info.height
    if info.format == "jpeg" and draft_scale > 1:
        pixels = -(-pixels // (draft_scale * draft_scale))
    return pixels * (FRAME_BYTES_PER_PIXEL * frames + _DECODER_EXTRA_PER_PIXEL[info.format]) + 64 * 1024


@dataclass(frozen=True)
class FinalImage:
    data: bytes
    mime_type: str
    width: int
    height: int


def sniff_format(data: bytes | memoryview) -> str | None:
    """The format named by the leading magic bytes (never by a header or file name)."""
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def _open(data: bytes):  # type: ignore[no-untyped-def]
    from PIL import Image

    # Our own pixel limit (checked from the header right after open) replaces Pillow's global one, which
    # would refuse images inside an operator's higher limit and whose warning filter is not thread-safe.
    Image.MAX_IMAGE_PIXELS = None
    return Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[f] for f in INPUT_FORMATS])


# Pillow decodes WebP holding the GIL (~9 ms per megapixel, measured): one such decode at a time leaves the event
# loop (and /healthz) waiting for at most one of them, never for a queue of them.
_WEBP_DECODE = threading.Lock()


def load_frame(img) -> None:  # type: ignore[no-untyped-def]
    """`img.load()`, with WebP decodes taken one at a time across threads."""
    if img.format == "WEBP":
        with _WEBP_DECODE:
            img.load()
    else:
        img.load()


def _check_complete(img) -> None:  # type: ignore[no-untyped-def]
    """Decode every byte of pixel data (JPEGs at 1/8 scale) so truncated or corrupt files are refused."""
    if img.format == "JPEG":
        scale = JPEG_CHECK_SCALE
        img.draft(img.mode, (max(1, img.width // scale), max(1, img.height // scale)))
    load_frame(img)


def probe_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Format and size from the header alone; refuses unknown formats and pixel bombs before any decode."""
    fmt = sniff_format(data)
    if fmt is None:
        raise invalid("not a PNG, JPEG, WebP or GIF image (judged by its bytes)")
    try:
        with _open(data) as img:
            width, height = img.size
            frames = int(getattr(img, "n_frames", 1) or 1)
    except ImageGenError:
        raise
    except Exception as exc:
        from PIL import Image

        if isinstance(exc, Image.DecompressionBombError):
            raise invalid(f"the image has more pixels than accepted (at most {max_pixels} pixels)") from exc
        raise invalid(f"the {fmt} image could not be read: it is corrupt or truncated") from exc
    return _within(ImageInfo(fmt, width, height, frames), max_pixels)


def _within(info: ImageInfo, max_pixels: int) -> ImageInfo:
    if info.width <= 0 or info.height <= 0:
        raise invalid("the image has no pixels")
    if info.width * info.height > max_pixels:
        raise invalid(f"the image is {info.width}x{info.height} pixels; at most {max_pixels} pixels are accepted")
    return info


@dataclass(frozen=True)
class InputPlan:
    """What vetting an input will take, known from its header before any pixel is decoded."""

    info: ImageInfo
    needs_decode: bool  # re-encoded as PNG (GIF, animated, EXIF-rotated) rather than checked and passed through

    @property
    def cost(self) -> int:
        """Peak bytes `load_input_image` holds: a 1/8 JPEG check, or the frame, its conversion and the PNG."""
        if self.needs_decode:
            return decode_cost(self.info, frames=3)
        return decode_cost(self.info, draft_scale=JPEG_CHECK_SCALE)


def plan_input(data: bytes, *, max_pixels: int, max_bytes: int) -> InputPlan:
    """Size, format and decode needs of an input image from its header alone (refuses what is never accepted)."""
    if len(data) > max_bytes:
        raise invalid(f"input image is {len(data)} bytes; at most {max_bytes} are accepted")
    info = probe_image(data, max_pixels=max_pixels)
    needs_decode = info.format == "gif" or info.frames > 1 or _exif_orientation(data, info.format) not in (None, 1)
    return InputPlan(info, needs_decode)


def load_input_image(data: bytes, *, max_pixels: int, max_bytes: int, plan: InputPlan | None = None) -> InputImage:
    """Validate an input image and return bytes an upstream can take.

    PNG/JPEG/WebP pass through with metadata stripped; a GIF or an animated image becomes its first frame
    as PNG (deliberately: models take stills); an EXIF-rotated image is turned upright.
    """
    plan = plan or plan_input(data, max_pixels=max_pixels, max_bytes=max_bytes)
    info = plan.info
    if not plan.needs_decode:
        try:
            with _open(data) as img:
                _check_complete(img)
        except Exception as exc:
            raise invalid(f"the {info.format} image is corrupt or truncated") from exc
        return InputImage(strip_metadata(data, info.format), info.mime_type, info.width, info.height)
    try:
        from PIL import ImageOps

        with _open(data) as img:
            img.seek(0)
            load_frame(img)
            if img.mode in ("P", "LA", "PA"):
                frame = img.convert("RGBA")
            elif img.mode not in ("RGB", "RGBA", "L"):
                frame = img.convert("RGB")  # e.g. CMYK JPEGs: PNG cannot hold them
            else:
                frame = img  # no copy: exif_transpose below makes the one new frame
            frame = ImageOps.exif_transpose(frame)
            out = io.BytesIO()
            frame.save(out, format="PNG")
            width, height = frame.size
            del frame
    except Exception as exc:
        raise invalid(f"the {info.format} image could not be decoded") from exc
    return InputImage(out.getvalue(), "image/png", width, height)


def has_alpha(data: bytes) -> bool:
    """Whether an (already vetted) image carries transparency: what marks the editable area of a mask."""
    with _open(data) as img:
        return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def _exif_orientation(data: bytes, fmt: str) -> int | None:
    if fmt not in ("jpeg", "webp", "png"):
        return None
    try:
        with _open(data) as img:
            orientation = img.getexif().get(0x0112)
            return orientation if isinstance(orientation, int) else None
    except Exception:
        return None


def finalize_output(data: bytes, *, output_format: str, max_pixels: int) -> FinalImage:
    """Check an upstream image is real, transcode it to `output_format` if needed, strip its metadata."""
    info = output_info(data, max_pixels=max_pixels)
    fmt = info.format
    if fmt == output_format:
        return FinalImage(strip_metadata(data, fmt), FORMAT_MIME[fmt], info.width, info.height)
    return FinalImage(transcode(data, output_format), FORMAT_MIME[output_format], info.width, info.height)


def output_info(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Header facts of an upstream image (`upstream_error` when it is none), before anything decodes it.

    A plain still image is read from its headers without Pillow (the generate path then never imports it when
    the format already fits); anything else is probed by Pillow.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "the model returned data that is not an image")
    still = read_still(data, fmt)
    try:
        if still is not None:
            return _within(ImageInfo(still.format, still.width, still.height, 1), max_pixels)
        return probe_image(data, max_pixels=max_pixels)
    except ImageGenError as exc:
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"the model returned an unusable image: {exc.message}") from exc


def finalize_cost(info: ImageInfo, output_format: str) -> int:
    """Peak bytes `finalize_output` holds: nothing decoded when the format already fits, else frame + copy."""
    return 0 if info.format == output_format else decode_cost(info, frames=2)


def preview_cost(info: ImageInfo, max_px: int) -> int:
    """Peak bytes `make_preview` holds: a JPEG drafted near the preview size, any other format decoded whole."""
    scale = max(1, min(info.width, info.height) // max_px) if info.format == "jpeg" else 1
    frames = 1 if info.format in ("jpeg", "webp") else 2  # palette/grey PNGs and GIFs are converted first
    return decode_cost(info, frames=frames, draft_scale=min(scale, 8)) + max_px * max_px * FRAME_BYTES_PER_PIXEL * 2


def transcode(data: bytes, output_format: str) -> bytes:
    """Re-encode to `output_format` (no metadata is carried over)."""
    from PIL import Image

    with _open(data) as img:
        img.seek(0)
        load_frame(img)
        if output_format == "jpeg":
            if img.mode in ("RGBA", "LA", "P", "PA"):
                rgba = img.convert("RGBA")
                frame = Image.new("RGB", rgba.size, (255, 255, 255))
                frame.paste(rgba, mask=rgba.getchannel("A"))
            else:
                frame = img.convert("RGB")
        else:
            frame = img.convert("RGBA") if img.mode in ("P", "PA", "LA") else img  # saved as it is: no copy
        out = io.BytesIO()
        options: dict[str, object] = {"quality": 92} if output_format in ("jpeg", "webp") else {"compress_level": 6}
        frame.save(out, format=_PIL_FORMAT[output_format], **options)
        return out.getvalue()


PREVIEW_MAX_BYTES = 40_000  # ~54 KB as base64: the whole JSON-RPC result stays well under 64 KiB


def make_preview(data: bytes, *, max_px: int, budget_bytes: int = PREVIEW_MAX_BYTES) -> tuple[bytes, str]:
    """A small JPEG (WebP when it has transparency), long side ≤ max_px, within `budget_bytes`.

    Made on every call by default, so it is made cheaply: JPEGs decode at reduced scale (`draft`), the shrink
    is a box `reduce` by the whole factor plus one bilinear pass over what is left (a bilinear pass over the
    whole frame took 2x as long), and an opaque preview is a JPEG (about 1 ms to encode at 384 px; WebP at
    method 4 took ~20 ms).
    """
    with _open(data) as img:
        img.seek(0)
        if img.format == "JPEG":
            img.draft("RGB", (max_px, max_px))
        load_frame(img)
        # Shrink before any other copy, so the decoded frame is the only large one held.
        frame = _shrunk(img if img.mode in ("RGB", "RGBA") else img.convert("RGBA"), max_px)
        if frame is img:
            frame = img.copy()  # small already; must outlive the closed file
    transparent = frame.mode == "RGBA" and frame.getchannel("A").getextrema()[0] < 255
    if not transparent and frame.mode != "RGB":
        frame = frame.convert("RGB")
    fmt, mime = ("WEBP", "image/webp") if transparent else ("JPEG", "image/jpeg")
    while True:
        for quality in (80, 65, 50, 35):
            out = io.BytesIO()
            frame.save(out, format=fmt, quality=quality, **({"method": 2} if transparent else {}))
            if out.tell() <= budget_bytes:
                return out.getvalue(), mime
        if max(frame.size) <= 32:
            return out.getvalue(), mime
        frame = _shrunk(frame, max(16, max(frame.size) // 2))


def _shrunk(frame, max_px: int):  # type: ignore[no-untyped-def]
    """`frame` with its long side at most `max_px`, aspect kept: a box reduce by the whole factor, then bilinear."""
    from PIL import Image

    factor = max(frame.size) // max_px
    if factor > 1:
        frame = frame.reduce(factor)
    if max(frame.size) <= max_px:
        return frame
    scale = max_px / max(frame.size)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    return frame.resize(size, Image.Resampling.BILINEAR)


# --- metadata stripping without decoding pixels --------------------------------------------------------------

_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}


def strip_metadata(data: bytes, fmt: str) -> bytes:
    """Drop text/EXIF/XMP metadata blocks at the container level; returns `data` itself when nothing is dropped."""
    try:
        if fmt == "png":
            return _strip_png(data)
        if fmt == "jpeg":
            return _strip_jpeg(data)
        if fmt == "webp":
            return _strip_webp(data)
    except (struct.error, IndexError, ValueError):
        return data  # malformed container: leave bytes as they are; decoding already vetted them
    return data


def _strip_png(data: bytes) -> bytes:
    pos, dropped = 8, False
    keep: list[bytes | memoryview] = [data[:8]]
    view = memoryview(data)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if ctype in _PNG_DROP:
            dropped = True
        else:
            keep.append(view[pos:end])
        pos = end
        if ctype == b"IEND":
            break
    if pos < len(data):
        dropped = True  # bytes after IEND (a polyglot payload) are never passed on
    return b"".join(keep) if dropped else data


def _strip_jpeg(data: bytes) -> bytes:
    pos, dropped = 2, False
    keep: list[bytes | memoryview] = [data[:2]]
    view = memoryview(data)
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        # APP1 (EXIF/XMP), APP13 (IPTC), COM: dropped. APP0 (JFIF), APP2 (ICC), APP14 (Adobe) kept.
        if marker in (0xE1, 0xED, 0xFE) or 0xE3 <= marker <= 0xEC or marker == 0xEF:
            dropped = True
        else:
            keep.append(view[pos:end])
        pos = end
    # Entropy-coded data cannot contain FF D9 (0xFF is byte-stuffed), so the first one after SOS ends the image.
    eoi = data.find(b"\xff\xd9", pos)
    end = eoi + 2 if eoi >= 0 else len(data)
    if not dropped and end == len(data):
        return data
    keep.append(view[pos:end])
    return b"".join(keep)


def _strip_webp(data: bytes) -> bytes:
    pos, chunks, dropped = 12, [], False
    (riff_size,) = struct.unpack("<I", data[4:8])
    limit = min(len(data), 8 + riff_size)
    dropped = limit < len(data)  # bytes after the RIFF container are never passed on
    view = memoryview(data)
    while pos + 8 <= limit:
        ctype = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if ctype in (b"EXIF", b"XMP "):
            dropped = True
        else:
            chunks.append((ctype, view[pos:end]))
        pos = end
    if not dropped:
        return data
    parts: list[bytes | memoryview] = []
    for ctype, chunk in chunks:
        if ctype == b"VP8X":
            header = bytearray(chunk[:9])
            header[8] &= ~0x0C & 0xFF  # clear the EXIF and XMP flags
            parts.append(bytes(header))
            parts.append(chunk[9:])
        else:
            parts.append(chunk)
    body = b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
