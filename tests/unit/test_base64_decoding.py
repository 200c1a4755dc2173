"""The one base64 decoder: lenient for caller inputs, standard-only for upstream answers."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegen_mcp import base64_codec
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


# The streamed parser tells base64 from text by whether a decode raises: the fast codec may never accept what the
# stdlib's strict mode refuses, must decode alike what both accept, and must accept every canonical encoding. (It is
# stricter in one place: the stdlib takes a stray "=" after a whole group, as in "AAAA=".)
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def _stdlib_strict(text: bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None


def _codec(text: bytes) -> bytes | None:
    try:
        return base64_codec.decode(text)
    except base64_codec.Error:
        return None


def _agrees(text: bytes) -> None:
    mine, stdlib = _codec(text), _stdlib_strict(text)
    if mine is not None:
        assert mine == stdlib
    elif stdlib is not None:
        assert base64.b64encode(stdlib) != text, "a canonical encoding was refused"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64), st.lists(st.tuples(st.integers(0, 200), st.sampled_from(_B64_ALPHABET + "-_ \n.é"))))
def test_the_codec_is_as_strict_as_the_stdlib_strict_mode(raw: bytes, edits: list[tuple[int, str]]) -> None:
    text = bytearray(base64.b64encode(raw))
    assert _codec(bytes(text)) == raw
    for at, char in edits:
        text[at % (len(text) + 1) : at % (len(text) + 1)] = char.encode()
    _agrees(bytes(text))


_EDGES = ["", "AA==", "AA=", "A===", "AAAA=", "AAAA=AAA", "AA==AA==", "QUFB\n", " QUFB", "QUFBé", "QU-_"]


@pytest.mark.parametrize("text", _EDGES)
def test_the_codec_is_as_strict_as_the_stdlib_strict_mode_at_the_edges(text: str) -> None:
    _agrees(text.encode("utf-8"))
