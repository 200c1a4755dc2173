"""Value types shared by the image pipeline and the provider adapters (no imports: breaks the import circle)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputImage:
    """A decoded, validated input image (edit reference or mask), as bytes the upstream can take."""

    data: bytes
    mime_type: str
    width: int
    height: int
