"""Base64 of image-sized payloads, through pybase64's SIMD codec (~30x the stdlib's `binascii` on 2 MB)."""

from __future__ import annotations

import binascii

import pybase64

Error = binascii.Error  # what a malformed text raises (pybase64 raises the stdlib's own error type)


def decode(text: bytes | str | memoryview) -> bytes:
    """Standard-alphabet base64 with correct padding; any other character, or bad padding, raises `Error`.

    The GIL is let go while a large text is decoded.
    """
    return pybase64.b64decode(text, validate=True)


def encode(data: bytes | memoryview) -> bytes:
    return pybase64.b64encode(data)


def encode_text(data: bytes | memoryview) -> str:
    return pybase64.b64encode_as_string(data)
