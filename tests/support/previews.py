"""What every client must receive in a default image result: exactly one small, decodable inline image."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

PREVIEW_MAX_PX = 384
PREVIEW_MAX_BYTES = 40_000
PREVIEW_FORMATS = {"image/jpeg": "JPEG", "image/webp": "WEBP"}


def check_one_preview(content: list[dict[str, Any]]) -> Image.Image:
    """The one `image` block of a result's content (as JSON), checked against the limits; returns it decoded."""
    images = [block for block in content if block.get("type") == "image"]
    assert len(images) == 1, [block.get("type") for block in content]
    block = images[0]
    assert block["mimeType"] in PREVIEW_FORMATS, block["mimeType"]
    raw = base64.b64decode(block["data"], validate=True)
    assert len(raw) <= PREVIEW_MAX_BYTES, len(raw)
    img = Image.open(io.BytesIO(raw))
    img.load()
    assert img.format == PREVIEW_FORMATS[block["mimeType"]]
    assert max(img.size) <= PREVIEW_MAX_PX, img.size
    return img
