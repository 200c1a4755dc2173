"""Parses an upstream's JSON answer as it streams in, decoding its long base64 strings to bytes on the way.

An image answer is mostly one base64 string (OpenAI `b64_json`, OpenRouter's `data:` URLs). Parsing it whole
holds the body, the decoded text and the image at once, and copies each; here a string that is still pure
base64 after `MIN_BLOB_CHARS` is decoded chunk by chunk as it arrives, so a call holds little more than the
image. Anything else (short strings, escapes, text that turns out not to be base64) stays ordinary JSON text:
the result is exactly what `json.loads` of the whole body gives, except that each such string is a `Base64Blob`.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from .. import base64_codec
from ..errors import ErrorCode, ImageGenError

MIN_BLOB_CHARS = 1024  # shorter strings are not worth the bookkeeping (ids, prompts, messages stay text)
_SLICE_BYTES = 64 * 1024

# Standard alphabet only: what upstream image payloads use; anything else keeps the string as text.
_BLOB_START = re.compile(rb"(data:[\w.+-]+/[\w.+-]+(?:;[\w=.+-]+)*;base64,)?[A-Za-z0-9+/]*={0,2}")
_QUOTE_OR_BACKSLASH = re.compile(rb'["\\]')
_OUTSIDE, _IN_STRING, _IN_BLOB = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Base64Blob:
    """A long JSON string that held base64 (after an optional `data:<type>;base64,` prefix), already decoded."""

    prefix: str
    data: bytes


class BlobJsonParser:
    """Feed it the body's chunks, then `result()`; long base64 strings come back as `Base64Blob`s."""

    def __init__(self, vendor: str, *, max_body_bytes: int, max_blob_bytes: int) -> None:
        self._vendor = vendor
        self._max_body = max_body_bytes
        self._max_blob = max_blob_bytes
        self._seen = 0
        self._skeleton = bytearray()  # the body with each blob replaced by a marker string
        self._marker = f"imagegen-blob-{secrets.token_hex(16)}-"  # unguessable: the upstream cannot forge one
        self._blobs: list[Base64Blob] = []
        self._state = _OUTSIDE
        self._string_start = 0  # where the current string's text starts in the skeleton
        self._escaped = False  # the current string's last byte so far is a backslash
        self._may_be_blob = True
        self._prefix = ""
        self._carry = b""  # base64 characters not yet decoded (an incomplete group, or a padded final one)
        self._out = io.BytesIO()

    def feed(self, chunk: bytes) -> None:
        self._seen += len(chunk)
        if self._seen > self._max_body:
            raise self._error(f"answered with more than {self._max_body} bytes")
        # A string is judged at the end of a slice: a long one in one big chunk must still become a blob.
        for start in range(0, len(chunk), _SLICE_BYTES):
            self._feed(chunk[start : start + _SLICE_BYTES] if len(chunk) > _SLICE_BYTES else chunk)

    def _feed(self, chunk: bytes) -> None:
        pos = 0
        while pos < len(chunk):
            if self._state == _OUTSIDE:
                quote = chunk.find(b'"', pos)
                if quote < 0:
                    self._skeleton += chunk[pos:]
                    return
                self._skeleton += chunk[pos : quote + 1]
                self._state, self._string_start, self._may_be_blob = _IN_STRING, len(self._skeleton), True
                pos = quote + 1
            elif self._state == _IN_STRING:
                pos = self._string_text(chunk, pos)
            else:
                pos = self._blob_text(chunk, pos)

    def result(self) -> Any:
        """The parsed answer; `upstream_error` when the body was not one JSON document."""
        if self._state != _OUTSIDE:
            raise self._error("answered with malformed JSON")
        try:
            parsed = json.loads(bytes(self._skeleton))
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error("answered with malformed JSON") from exc
        return self._restore(parsed) if self._blobs else parsed

    def _string_text(self, chunk: bytes, pos: int) -> int:
        """Copy string text up to its closing quote (escapes honoured); start a blob once it is long base64."""
        scan = pos
        if self._escaped:
            scan, self._escaped = pos + 1, False
        while True:
            limit = len(chunk)
            if self._may_be_blob:
                # Only the string's first MIN_BLOB_CHARS decide; past them a blob's end is found by `find`, which
                # is many times faster than this search.
                limit = min(limit, pos + max(1, MIN_BLOB_CHARS - (len(self._skeleton) - self._string_start)))
            found = _QUOTE_OR_BACKSLASH.search(chunk, scan, limit)
            if found is None:
                self._skeleton += chunk[pos:limit]
                self._maybe_start_blob()
                if limit == len(chunk) or self._state == _IN_BLOB:
                    return limit
                pos = scan = limit  # judged to be text: the rest of it is searched whole
                continue
            at = found.start()
            if chunk[at] == 0x5C:  # backslash: the next byte is escaped, perhaps in the next chunk
                self._may_be_blob = False  # no base64 string has one
                if at + 1 >= len(chunk):
                    self._skeleton += chunk[pos:]
                    self._escaped = True
                    self._may_be_blob = False
                    return len(chunk)
                scan = at + 2
                continue
            self._skeleton += chunk[pos:at]
            self._maybe_start_blob()  # a long one that arrived whole is a blob all the same
            if self._state == _IN_BLOB:
                return self._blob_text(chunk, at)
            self._skeleton += b'"'
            self._state = _OUTSIDE
            return at + 1

    def _maybe_start_blob(self) -> None:
        if not self._may_be_blob or len(self._skeleton) - self._string_start < MIN_BLOB_CHARS:
            return
        text = bytes(self._skeleton[self._string_start :])
        match = _BLOB_START.fullmatch(text)
        if match is None:
            self._may_be_blob = False  # checked once: this string stays text
            return
        del self._skeleton[self._string_start :]
        self._prefix = (match.group(1) or b"").decode("ascii")
        self._carry, self._out = b"", io.BytesIO()
        self._state = _IN_BLOB
        if not self._decode(text[len(match.group(1) or b"") :]):
            self._back_to_text()

    def _blob_text(self, chunk: bytes, pos: int) -> int:
        quote = chunk.find(b'"', pos)
        end = len(chunk) if quote < 0 else quote
        if not self._decode(chunk[pos:end]):
            self._back_to_text()
            return pos  # the same bytes again, as ordinary string text
        if quote < 0:
            return len(chunk)
        if not self._finish_blob():
            self._back_to_text()  # holds this chunk's part too: go on at the closing quote
            return quote
        self._skeleton += f"{self._marker}{len(self._blobs) - 1}".encode("ascii") + b'"'
        self._state = _OUTSIDE
        return quote + 1

    def _decode(self, text: bytes) -> bool:
        """Decode whole groups of `text` (after the carry); False when it is not standard base64 after all."""
        pending = self._carry + text
        padding = pending.find(b"=")
        cut = (padding if padding >= 0 else len(pending)) // 4 * 4
        if padding >= 0 and len(pending) - cut > 4:
            return False  # characters after the padding
        if not self._write(pending[:cut]):
            return False
        self._carry = pending[cut:]
        return True

    def _write(self, text: bytes) -> bool:
        try:
            self._out.write(base64_codec.decode(text))
        except base64_codec.Error:
            return False
        if self._out.tell() > self._max_blob:
            raise self._error(f"returned an image larger than {self._max_blob} bytes")
        return True

    def _finish_blob(self) -> bool:
        if not self._write(self._carry):
            return False
        self._blobs.append(Base64Blob(self._prefix, self._out.getvalue()))
        self._out = io.BytesIO()
        return True

    def _back_to_text(self) -> None:
        """Not base64 after all: the string's text so far goes back into the skeleton, exactly as it arrived."""
        # Only whole unpadded groups were decoded, so re-encoding gives back the very characters.
        self._skeleton += self._prefix.encode("ascii") + base64_codec.encode(self._out.getvalue()) + self._carry
        self._carry, self._out = b"", io.BytesIO()
        self._state, self._may_be_blob = _IN_STRING, False

    def _restore(self, value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith(self._marker):
                return self._blobs[int(value[len(self._marker) :])]
            return value
        if isinstance(value, dict):
            return {key: self._restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._restore(item) for item in value]
        return value

    def _error(self, what: str) -> ImageGenError:
        return ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{self._vendor} {what}", details={"upstream": self._vendor})
