"""The streaming JSON parser of upstream answers: lossless against json.loads, blobs decoded, hostile bodies refused."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers.json_blobs import MIN_BLOB_CHARS, Base64Blob, BlobJsonParser

MIB = 1024 * 1024


def parse(chunks: Iterable[bytes], *, max_body: int = 64 * MIB, max_blob: int = 32 * MIB) -> Any:
    parser = BlobJsonParser("Vendor", max_body_bytes=max_body, max_blob_bytes=max_blob)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.result()


def chunked(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def as_text(value: Any) -> Any:
    """The parse with every blob turned back into the string it came from."""
    if isinstance(value, Base64Blob):
        return value.prefix + base64.b64encode(value.data).decode("ascii")
    if isinstance(value, dict):
        return {key: as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_text(item) for item in value]
    return value


def b64(nbytes: int, seed: int = 0) -> str:
    return base64.b64encode(
        os.urandom(nbytes) if seed < 0 else bytes((i * 7 + seed) % 251 for i in range(nbytes))
    ).decode()


IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 12
LONG_B64 = base64.b64encode(IMAGE).decode()  # ~4.1 KB: a blob
DOCS: dict[str, str] = {
    "openai": json.dumps({"created": 1, "data": [{"b64_json": LONG_B64, "revised_prompt": 'a "quoted" cat'}]}),
    "openrouter data URL": json.dumps(
        {
            "choices": [
                {"message": {"content": "é ✓", "images": [{"image_url": {"url": "data:image/png;base64," + LONG_B64}}]}}
            ]
        }
    ),
    "two blobs in a list": json.dumps({"output": [LONG_B64, "data:image/webp;base64," + b64(3000, 5)]}),
    "padded blob": json.dumps({"b64_json": b64(3001, 3)}),  # ends in "=="
    "escaped slashes stay text": json.dumps({"b64_json": LONG_B64}).replace("/", "\\/"),
    "line-wrapped base64 stays text": json.dumps(
        {"b64_json": "\n".join(LONG_B64[i : i + 76] for i in range(0, len(LONG_B64), 76))}
    ),
    "base64 then a space": json.dumps({"text": LONG_B64 + " and then words"}),
    "base64 then a dot": json.dumps({"text": LONG_B64 + "."}),
    "padding in the middle": json.dumps({"b64_json": LONG_B64[:2000] + "==" + LONG_B64[2000:]}),
    "bad length": json.dumps({"b64_json": LONG_B64 + "A"}),
    "url-safe alphabet stays text": json.dumps({"b64_json": LONG_B64.replace("+", "-").replace("/", "_")}),
    "long prose": json.dumps({"error": {"message": "word " * 2000}}),
    "escapes and unicode": json.dumps({'k"ey': ["\\", "\u0000\t", "😀" * 600, {"n": [1, 2.5, None, True]}]}),
    "short base64": json.dumps({"b64_json": b64(30)}),
    "top-level list": json.dumps([LONG_B64, 1]),
}


@pytest.mark.parametrize("name", list(DOCS))
@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 1000, 1 << 20])
def test_the_parse_is_json_loads_with_blobs_in_place_of_their_text(name: str, size: int) -> None:
    body = DOCS[name].encode()
    assert as_text(parse(chunked(body, size))) == json.loads(body)


def _blobs(value: Any) -> list[Base64Blob]:
    if isinstance(value, Base64Blob):
        return [value]
    if isinstance(value, dict):
        return [blob for item in value.values() for blob in _blobs(item)]
    if isinstance(value, list):
        return [blob for item in value for blob in _blobs(item)]
    return []


@pytest.mark.parametrize("size", [7, 4096, 1 << 20])
def test_long_base64_strings_arrive_decoded(size: int) -> None:
    found = parse(chunked(DOCS["openai"].encode(), size))
    assert found["data"][0]["b64_json"] == Base64Blob("", IMAGE)
    assert found["data"][0]["revised_prompt"] == 'a "quoted" cat'
    routed = parse(chunked(DOCS["openrouter data URL"].encode(), size))
    assert routed["choices"][0]["message"]["images"][0]["image_url"]["url"] == Base64Blob(
        "data:image/png;base64,", IMAGE
    )
    assert len(_blobs(parse(chunked(DOCS["two blobs in a list"].encode(), size)))) == 2
    assert len(_blobs(parse(chunked(DOCS["padded blob"].encode(), size)))) == 1


@pytest.mark.parametrize(
    "name",
    [
        "escaped slashes stay text",
        "line-wrapped base64 stays text",
        "base64 then a space",
        "padding in the middle",
        "bad length",
        "url-safe alphabet stays text",
        "long prose",
        "short base64",
    ],
)
def test_what_is_not_plain_standard_base64_stays_a_string(name: str) -> None:
    assert _blobs(parse(chunked(DOCS[name].encode(), 512))) == []


def test_a_string_just_under_the_threshold_stays_text_and_one_at_it_becomes_a_blob() -> None:
    under = "A" * (MIN_BLOB_CHARS - 4)
    at = "A" * (MIN_BLOB_CHARS * 3)
    found = parse(chunked(json.dumps({"a": under, "b": at}).encode(), 100))
    assert found["a"] == under
    assert found["b"] == Base64Blob("", base64.b64decode(at))


@pytest.mark.parametrize("odd", ['\\"', "\\\\", "\\n", "-", "é"])
def test_a_string_that_turns_odd_around_the_judged_prefix_parses_exactly(odd: str) -> None:
    """Only a string's first MIN_BLOB_CHARS are searched for its end before it is judged: an escape (or a character
    outside base64) just inside, at, or just past that window must still be read as json.loads reads it."""
    for offset in range(MIN_BLOB_CHARS - 6, MIN_BLOB_CHARS + 6):
        text = "QUJD" * (offset // 4) + "QUJD"[: offset % 4]
        body = ('{"a": "' + text + odd + "QUJD" * 700 + '", "b": "tail \\" quote"}').encode()
        expected = json.loads(body)
        for size in (len(body), MIN_BLOB_CHARS + 7, 1000, 97):
            assert as_text(parse(chunked(body, size))) == expected, (odd, offset, size)


def test_a_forged_marker_string_stays_the_upstreams_text() -> None:
    forged = "imagegen-blob-" + "0" * 32 + "-0"
    found = parse([json.dumps({"b64_json": LONG_B64, "note": forged}).encode()])
    assert found["note"] == forged
    assert isinstance(found["b64_json"], Base64Blob)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"b64_json": "' + LONG_B64.encode(),  # cut inside a blob
        b'{"b64_json": "' + LONG_B64.encode() + b'"',  # cut after it
        b'{"text": "abc',  # cut inside a short string
        b'{"text": "abc\\',  # cut after a backslash
        b'{"a": 1} trailing',
        b"\xff\xfe not json",
        b'{"b64_json": "' + LONG_B64.encode() + b'" "x"}',
    ],
)
def test_malformed_bodies_are_upstream_errors(body: bytes) -> None:
    for size in (3, 1 << 20):
        with pytest.raises(ImageGenError) as caught:
            parse(chunked(body, size))
        assert caught.value.code is ErrorCode.UPSTREAM_ERROR
        assert "malformed JSON" in caught.value.message


def test_a_body_over_the_cap_is_refused_as_it_streams() -> None:
    body = DOCS["openai"].encode()
    parser = BlobJsonParser("Vendor", max_body_bytes=len(body) - 1, max_blob_bytes=MIB)
    with pytest.raises(ImageGenError) as caught:
        for chunk in chunked(body, 1000):
            parser.feed(chunk)
    assert caught.value.code is ErrorCode.UPSTREAM_ERROR
    assert f"more than {len(body) - 1} bytes" in caught.value.message


def test_a_blob_over_the_image_cap_is_refused() -> None:
    with pytest.raises(ImageGenError) as caught:
        parse(chunked(DOCS["openai"].encode(), 1000), max_blob=len(IMAGE) - 1)
    assert caught.value.code is ErrorCode.UPSTREAM_ERROR
    assert "larger than" in caught.value.message


def test_a_large_image_answer_is_parsed_holding_little_more_than_the_image() -> None:
    image_bytes = 6 * MIB
    image = os.urandom(image_bytes)

    def body() -> Iterator[bytes]:  # the text is produced chunk by chunk, never held whole by the test
        yield b'{"created": 1, "data": [{"b64_json": "'
        for start in range(0, image_bytes, 48 * 1024):
            yield base64.b64encode(image[start : start + 48 * 1024])
        yield b'"}]}'

    tracemalloc.start()
    try:
        found = parse(body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found["data"][0]["b64_json"].data == image
    # json.loads of the whole body would hold the body (8 MiB), its text (8 MiB) and the image (6 MiB).
    assert peak < image_bytes * 1.3, peak
