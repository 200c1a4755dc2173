"""The storage seam: how outputs and uploads are named, stored, found again and handed out as expiring links."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from ..errors import ErrorCode, ImageGenError

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
MIME_BY_EXTENSION = {ext: mime for mime, ext in EXTENSIONS.items()}

# `<utc date>-<utc time>-<128 random bits>.<ext>`: sortable by creation time, unguessable.
IMAGE_ID_RE = re.compile(r"^(\d{8})-(\d{6})-([0-9a-f]{32})\.(png|jpg|webp)$")


def new_image_id(mime_type: str, now: datetime | None = None) -> str:
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{when:%Y%m%d-%H%M%S}-{secrets.token_hex(16)}.{EXTENSIONS[mime_type]}"


def is_image_id(value: str) -> bool:
    return IMAGE_ID_RE.fullmatch(value) is not None


def mime_of_id(image_id: str) -> str:
    """The MIME type an output or upload id names by its extension."""
    return MIME_BY_EXTENSION[image_id.rsplit(".", 1)[-1]]


# `up-<output-style id>`: an upload id can never be taken for an output id (those start with a digit).
UPLOAD_ID_RE = re.compile(r"^up-(\d{8})-(\d{6})-([0-9a-f]{32})\.(png|jpg|webp)$")


def new_upload_id(mime_type: str, now: datetime | None = None) -> str:
    return f"up-{new_image_id(mime_type, now)}"


def is_upload_id(value: str) -> bool:
    return UPLOAD_ID_RE.fullmatch(value) is not None


def upload_not_found(upload_id: str) -> ImageGenError:
    """The one answer for an upload that is missing, not (yet) uploaded, deleted, or someone else's."""
    return ImageGenError(
        ErrorCode.NOT_FOUND,
        f"upload {upload_id[:80]} does not exist: it was never uploaded (or not within its upload window), "
        "was deleted after the uploads' retention, or belongs to another caller",
    )


@dataclass(frozen=True)
class StoredImage:
    id: str
    uri: str
    mime_type: str
    size_bytes: int
    created_at: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredBytes:
    """An object read back: its bytes, type and the metadata it was stored with (`owner` among them)."""

    data: bytes
    mime_type: str
    metadata: Mapping[str, str]


MetadataCheck = Callable[[Mapping[str, str]], bool]
"""Decides from an object's metadata whether this read may see it (the owner rule of access/ownership.py)."""


def output_not_found(image_id: str) -> ImageGenError:
    """The one answer for an output that is gone, never existed or is someone else's: no existence oracle."""
    return ImageGenError(
        ErrorCode.NOT_FOUND, f"image {image_id} does not exist (expired, never made, or not yours to use)"
    )


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class UploadTicket:
    """Where and how the bytes of upload `id` may be PUT: `url` with exactly `headers`, until `expires_at`."""

    id: str
    url: str
    headers: Mapping[str, str]
    expires_at: datetime


@runtime_checkable
class ImageStore(Protocol):
    """Where outputs live. Every method raises `ImageGenError` (`storage_error`, `not_found`, ...)."""

    name: str

    async def startup_check(self) -> None:
        """Fail fast (misconfigured) when the store cannot work, e.g. it cannot sign URLs."""
        ...

    async def put(self, data: bytes, *, mime_type: str, metadata: Mapping[str, str]) -> StoredImage: ...

    async def sign(self, image_id: str, *, ttl_seconds: int, base_url: str | None) -> SignedUrl: ...

    async def read(self, image_id: str, *, max_bytes: int, allow: MetadataCheck | None = None) -> StoredBytes:
        """An earlier output; `output_not_found` when it is gone or `allow` refuses its metadata.

        `allow` is asked before the size check and before any byte is read, so a refused object tells nothing.
        """
        ...

    async def metadata(self, image_id: str) -> Mapping[str, str]:
        """The metadata an earlier output was stored with; `output_not_found` when it is gone."""
        ...

    def resolve_reference(self, ref: str) -> str | None:
        """The output id `ref` names (id, durable URI or one of our URLs), or None if it is not ours."""
        ...

    async def read_uri(self, uri: str, *, max_bytes: int) -> StoredBytes:
        """Bytes of a `gs://` input from an allowed bucket (`forbidden`/`unsupported` otherwise)."""
        ...

    async def create_upload(
        self,
        *,
        mime_type: str,
        size_bytes: int,
        ttl_seconds: int,
        metadata: Mapping[str, str],
        base_url: str | None,
    ) -> UploadTicket:
        """A new upload id and a signed PUT of at most `size_bytes` of `mime_type`; `metadata` stays with it."""
        ...

    async def read_upload(self, upload_id: str, *, max_bytes: int, allow: MetadataCheck) -> bytes:
        """The uploaded bytes; `upload_not_found` when absent or when `allow(metadata)` is false."""
        ...

    async def delete(self, image_id: str) -> None: ...

    async def aclose(self) -> None: ...
