"""Format and size of a still PNG/JPEG/WebP/GIF read from its container headers alone, without importing Pillow.

`read_still` answers only when the structure is one Pillow opens the same way (same size, one frame); anything
animated, unusual, inconsistent or truncated gives None, and the caller asks Pillow instead. It never raises.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple


class StillImage(NamedTuple):
    format: str
    width: int
    height: int


def read_still(data: bytes, fmt: str | None) -> StillImage | None:
    """The still image `data` holds, or None when its headers alone do not say so with certainty.

    `fmt` is what `imaging.sniff_format` judged from the magic bytes (None: not an image we read).
    """
    if fmt is None or fmt not in _READERS:
        return None
    try:
        size = _READERS[fmt](data)
    except (struct.error, IndexError):  # a bounds slip on hostile bytes: not certain, so not an answer
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return StillImage(fmt, *size)


# --- PNG: IHDR, then every chunk before the first IDAT complete with a good CRC ------------------------------

_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Chunks Pillow reads before IDAT whose content cannot make it refuse the file (given the minimum lengths below).
# iCCP/zTXt/iTXt (decompressed by Pillow), acTL/fcTL (APNG) and anything unknown send the file to Pillow.
_PNG_PLAIN = frozenset({b"PLTE", b"tRNS", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"tEXt", b"eXIf"})
_PNG_PLAIN |= frozenset({b"tIME", b"bKGD", b"sBIT", b"hIST", b"sPLT"})
_PNG_MIN_LENGTH = {b"sRGB": 1, b"gAMA": 4, b"cHRM": 32, b"pHYs": 9}
_PNG_TEXT_LIMIT = 1 << 20  # far below Pillow's text-memory cap


def _png(data: bytes) -> tuple[int, int] | None:
    length, ctype = struct.unpack_from(">I4s", data, 8)
    if ctype != b"IHDR" or length != 13 or not _png_crc_ok(data, 8, 13):
        return None
    width, height, depth, color, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if depth not in _PNG_DEPTHS.get(color, ()) or compression or filtering or interlace not in (0, 1):
        return None
    pos, text = 33, 0
    while True:
        if pos + 8 > len(data):
            return None
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if ctype == b"IDAT":
            return width, height
        if ctype not in _PNG_PLAIN or length < _PNG_MIN_LENGTH.get(ctype, 0):
            return None
        if ctype == b"tRNS" and length < {0: 2, 2: 6}.get(color, 0):
            return None
        if ctype == b"tEXt":
            text += length
            if text > _PNG_TEXT_LIMIT:
                return None
        if pos + 12 + length > len(data) or not _png_crc_ok(data, pos, length):
            return None
        pos += 12 + length


def _png_crc_ok(data: bytes, pos: int, length: int) -> bool:
    stored: int = struct.unpack_from(">I", data, pos + 8 + length)[0]
    return zlib.crc32(memoryview(data)[pos + 4 : pos + 8 + length]) == stored


# --- JPEG: the marker segments up to the start of scan, with exactly one frame header -----------------------

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SKIPPED = frozenset({0xC4, 0xCC, 0xDC, 0xDD, 0xDF, 0xFE})  # DHT, DAC, DNL, DRI, EXP, COM: read past


def _jpeg(data: bytes) -> tuple[int, int] | None:
    pos, size = 2, None
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return None  # fill bytes, stray bytes or truncation: Pillow's tolerant walk decides
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        body = memoryview(data)[pos + 4 : end]
        if marker == 0xDA:
            return size
        if marker in _SOF:
            if size is not None or not _jpeg_frame_ok(body):
                return None
            height, width = struct.unpack_from(">HH", body, 1)
            size = width, height
        elif marker == 0xDB:
            if not _jpeg_tables_ok(body):
                return None
        elif 0xE0 <= marker <= 0xEF:
            if not _jpeg_app_ok(marker, bytes(body[:14])):
                return None
        elif marker not in _SKIPPED:
            return None
        pos = end


def _jpeg_frame_ok(body: memoryview) -> bool:
    """8-bit samples, 1/3/4 components, each with its full 3-byte spec (what Pillow's SOF reader takes)."""
    return len(body) >= 6 and body[0] == 8 and body[5] in (1, 3, 4) and (len(body) - 6) % 3 == 0


def _jpeg_tables_ok(body: memoryview) -> bool:
    pos = 0
    while pos < len(body):
        pos += 1 + (64 if body[pos] < 16 else 128)
    return pos == len(body)


def _jpeg_app_ok(marker: int, head: bytes) -> bool:
    """APPn segments Pillow reads without failing and that keep the file a plain single-frame JPEG."""
    if marker == 0xE1 and head.startswith(b"Exif\0\0"):
        return False  # Pillow parses EXIF at open (DPI); let it
    if marker == 0xE2 and head.startswith(b"MPF\0"):
        return False  # a multi-picture file: Pillow may open it as MPO with several frames
    if marker == 0xE2 and head.startswith(b"ICC_PROFILE\0"):
        return len(head) >= 14
    if marker == 0xED and head.startswith(b"Photoshop 3.0\0"):
        return False
    if (marker == 0xE0 and head.startswith(b"JFIF")) or (marker == 0xEE and head.startswith(b"Adobe")):
        return len(head) >= 7
    return True


# --- WebP: the whole RIFF container, one still VP8/VP8L bitstream (and the VP8X canvas, if any, equal to it) --

_WEBP_EXTENDED_OK = frozenset({b"ICCP", b"ALPH", b"EXIF", b"XMP "})
_WEBP_MAX_AREA = 1 << 32  # libwebp refuses canvases this large


def _webp(data: bytes) -> tuple[int, int] | None:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if riff_size % 2 or end > len(data):
        return None
    chunks = []
    pos = 12
    while pos < end:
        if pos + 8 > end:
            return None
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        stop = pos + 8 + size + (size & 1)
        if stop > end:
            return None
        chunks.append((fourcc, memoryview(data)[pos + 8 : pos + 8 + size]))
        pos = stop
    if not chunks:
        return None
    first, body = chunks[0]
    if first in (b"VP8 ", b"VP8L"):
        return _webp_bitstream(first, body) if len(chunks) == 1 else None
    if first != b"VP8X" or len(body) != 10 or bytes(body[1:4]) != b"\0\0\0":
        return None
    canvas = 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    rest = [fourcc for fourcc, _ in chunks[1:]]
    images = [i for i, fourcc in enumerate(rest) if fourcc in (b"VP8 ", b"VP8L")]
    if len(images) != 1 or any(f not in _WEBP_EXTENDED_OK for i, f in enumerate(rest) if i != images[0]):
        return None
    index = images[0]
    image, bitstream = rest[index], chunks[index + 1][1]
    alphas = [i for i, fourcc in enumerate(rest) if fourcc == b"ALPH"]
    if alphas and (image == b"VP8L" or len(alphas) > 1 or alphas[0] > index):
        return None
    # The flags must say exactly what the chunks hold (animation, 0x02, and the reserved bits never set).
    has_alpha = bool(alphas) or (image == b"VP8L" and len(bitstream) >= 5 and bool(bitstream[4] & 0x10))
    expected = sum(flag for flag, there in _webp_flags(rest, has_alpha) if there)
    if body[0] != expected:
        return None
    size = _webp_bitstream(image, bitstream)
    if size != canvas or canvas[0] * canvas[1] >= _WEBP_MAX_AREA:
        return None
    return size


def _webp_flags(fourccs: list[bytes], has_alpha: bool) -> list[tuple[int, bool]]:
    return [(0x20, b"ICCP" in fourccs), (0x10, has_alpha), (0x08, b"EXIF" in fourccs), (0x04, b"XMP " in fourccs)]


def _webp_bitstream(fourcc: bytes, body: memoryview) -> tuple[int, int] | None:
    if fourcc == b"VP8L":
        if len(body) < 5 or body[0] != 0x2F:
            return None
        (bits,) = struct.unpack_from("<I", body, 1)
        if bits >> 29:  # version: only 0 exists
            return None
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if len(body) < 10 or bytes(body[3:6]) != b"\x9d\x01\x2a":
        return None
    tag = body[0] | body[1] << 8 | body[2] << 16
    # A key frame (bit 0 clear), a known profile, shown, its first partition inside the chunk.
    if tag & 1 or (tag >> 1) & 7 > 3 or not (tag >> 4) & 1 or tag >> 5 >= len(body):
        return None
    width, height = struct.unpack_from("<HH", body, 6)
    return width & 0x3FFF, height & 0x3FFF


# --- GIF: every block well-formed up to the trailer, exactly one image, inside the logical screen ------------


def _gif(data: bytes) -> tuple[int, int] | None:
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    images = 0
    while True:
        if pos >= len(data):
            return None  # no trailer
        introducer = data[pos]
        if introducer == 0x3B:
            return (width, height) if images else None
        blocks: list[int] = []
        if introducer == 0x21:
            label = data[pos + 1]
            after = _gif_sub_blocks(data, pos + 2, blocks)
            if after is None or not _gif_extension_ok(label, blocks):
                return None
        elif introducer == 0x2C:
            left, top, w, h, local = struct.unpack_from("<HHHHB", data, pos + 1)
            if left + w > width or top + h > height:
                return None  # Pillow grows the canvas to fit the frame
            images += 1
            if images > 1:
                return None  # animated: Pillow counts the frames; no need to walk the rest
            # The descriptor, its palette and the LZW code size, then the image data.
            after = _gif_sub_blocks(data, pos + 11 + (3 << ((local & 7) + 1) if local & 0x80 else 0), blocks)
            if after is None:
                return None
        else:
            return None
        pos = after


def _gif_sub_blocks(data: bytes, pos: int, lengths: list[int]) -> int | None:
    """Position after the sub-block chain starting at `pos` (None if it runs off the end); collects the lengths."""
    while pos < len(data):
        length = data[pos]
        if length == 0:
            return pos + 1
        lengths.append(length)
        pos += 1 + length
    return None


def _gif_extension_ok(label: int, lengths: list[int]) -> bool:
    """Extensions Pillow's reader walks past exactly as this does (an empty one makes it skip the next blocks)."""
    if label == 0xFE:  # comment: read block by block
        return True
    if label == 0xF9:  # graphic control: Pillow reads its flags, delay and transparent index
        return bool(lengths) and lengths[0] >= 4
    if label == 0xFF:  # application (NETSCAPE looping reads a second block)
        return len(lengths) >= 2
    return bool(lengths)


_READERS = {"png": _png, "jpeg": _jpeg, "webp": _webp, "gif": _gif}
