"""The one base64 decoder: lenient for caller inputs, standard-only for upstream answers."""

from __future__ import annotations

import base64

import pytest

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.inputs import decode_base64
from imagegen_mcp.providers import upstream_http

RAW = bytes(range(256)) * 3


def test_well_formed_with_whitespace_and_url_safe() -> None:
    standard = base64.b64encode(RAW).decode()
    assert decode_base64(standard) == RAW
    assert decode_base64("\n".join(standard[i : i + 76] for i in range(0, len(standard), 76))) == RAW
    url_safe = base64.urlsafe_b64encode(RAW).decode().rstrip("=")
    assert decode_base64(url_safe) == RAW
    with pytest.raises(ImageGenError):
        decode_base64(url_safe, lenient=False)


def test_size_is_checked_before_decoding() -> None:
    with pytest.raises(ImageGenError, match="larger than 100 bytes"):
        decode_base64("A" * 1000, max_bytes=100)
    assert decode_base64(base64.b64encode(b"x" * 100).decode(), max_bytes=100) == b"x" * 100


def test_upstream_garbage_is_an_upstream_error() -> None:
    assert upstream_http.decode_base64("Vendor", base64.b64encode(RAW).decode() + "\n") == RAW
    with pytest.raises(ImageGenError) as info:
        upstream_http.decode_base64("Vendor", "not*base64")
    assert info.value.code == ErrorCode.UPSTREAM_ERROR and "Vendor" in info.value.message
