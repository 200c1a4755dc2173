"""How a user keeps a result: its link fields (link, expiry, a file name from the prompt and a shell-safe curl line)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC
from typing import TYPE_CHECKING, Any

from ..storage.base import EXTENSIONS

if TYPE_CHECKING:
    from ..storage.base import SignedUrl

MAX_STEM_CHARS = 48
FALLBACK_STEM = "image"
_NOT_SAFE = re.compile(r"[^a-z0-9]+")
LINK_FIELDS = ("url", "expires_at", "download")
"""The fields of a result image that change with every signing: job records store the image without them."""


def _stem(prompt: str) -> str:
    """The prompt as lowercase ASCII words joined by hyphens, cut at a word boundary; FALLBACK_STEM if empty."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode("ascii").lower()
    words = [w for w in _NOT_SAFE.split(ascii_text) if w]
    stem = ""
    for word in words:
        candidate = f"{stem}-{word}" if stem else word
        if len(candidate) > MAX_STEM_CHARS:
            if not stem:  # one very long word: cut it
                stem = word[:MAX_STEM_CHARS]
            break
        stem = candidate
    return stem or FALLBACK_STEM


def suggested_filename(prompt: str, mime_type: str, index: int, count: int) -> str:
    """`a-red-fox-in-snow.png`; `…-2.png` for the second of several images. Only [a-z0-9-] and one dot."""
    suffix = f"-{index + 1}" if count > 1 else ""
    return f"{_stem(prompt)}{suffix}.{EXTENSIONS.get(mime_type, 'img')}"


def shell_quote(text: str) -> str:
    """`text` in single quotes for POSIX shells (a quote inside becomes '\\'')."""
    return "'" + text.replace("'", "'\\''") + "'"


def download(prompt: str, mime_type: str, url: str, *, index: int, count: int) -> dict[str, Any]:
    """The `download` object of image `index` of `count` made from `prompt` (the same on every re-signing)."""
    filename = suggested_filename(prompt, mime_type, index, count)
    return {"filename": filename, "curl": f"curl -fsSL -o {shell_quote(filename)} {shell_quote(url)}"}


def link_fields(link: SignedUrl, prompt: str, mime_type: str, *, index: int, count: int) -> dict[str, Any]:
    """The LINK_FIELDS of image `index` of `count`, for a fresh signing `link` of it."""
    return {
        "url": link.url,
        "expires_at": link.expires_at.astimezone(UTC).isoformat(timespec="seconds"),
        "download": download(prompt, mime_type, link.url, index=index, count=count),
    }
