"""Uploads of the local store: HMAC-signed `PUT /uploads/<id>` windows, streamed to disk within their limits.

An upload is two files under `<local_dir>/uploads/`: `<id>.json` (written when the upload is created: owner and
the other metadata, declared type and size, end of the window) and `<id>` (the bytes, once they arrived).

A second PUT to the same id is refused with 409: the first complete body wins (the bytes are streamed to a
private temp file and hard-linked into place, which fails when the name exists), so an upload never changes
under an edit that already read it, and a leaked URL cannot replace what its owner uploaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..errors import ErrorCode, ImageGenError
from .base import MetadataCheck, UploadTicket, is_upload_id, mime_of_id, new_upload_id, upload_not_found

UPLOADS_DIR = "uploads"
_MAX_DIGITS = 12  # expiry timestamps and sizes; longer numbers are not ours


class UploadRefused(Exception):
    """A PUT the route answers with `status` and a short plain-text `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _number(text: str) -> int | None:
    # isascii: str.isdigit() is also true for "²" and other digits int() refuses.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS else None


class LocalUploads:
    """Creates, receives, reads and sweeps the uploads of one local store folder."""

    def __init__(self, root: Path, signing_key: Callable[[], bytes], retention_days: int) -> None:
        self.dir = root / UPLOADS_DIR
        self._key = signing_key
        self._retention_seconds = retention_days * 86400

    def _signature(self, upload_id: str, expires: int, max_bytes: int) -> str:
        # "upload" first: a /files signature (id, expiry) can never pass for an upload's.
        message = f"upload\n{upload_id}\n{expires}\n{max_bytes}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def create(
        self, *, mime_type: str, size_bytes: int, ttl_seconds: int, metadata: Mapping[str, str], base: str
    ) -> UploadTicket:
        """Record the upload and sign its PUT (blocking: run it in a worker thread)."""
        now = datetime.now(UTC)
        upload_id = new_upload_id(mime_type, now)
        expires = int(now.timestamp()) + ttl_seconds
        record = {
            "metadata": dict(metadata),
            "content_type": mime_type,
            "max_bytes": size_bytes,
            "expires": expires,
            "created_at": now.isoformat(),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / f"{upload_id}.json").write_text(json.dumps(record), encoding="utf-8")
        sig = self._signature(upload_id, expires, size_bytes)
        return UploadTicket(
            id=upload_id,
            url=f"{base.rstrip('/')}/uploads/{upload_id}?expires={expires}&max={size_bytes}&sig={sig}",
            headers={"Content-Type": mime_type},
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def check_put(self, upload_id: str, query: Mapping[str, str], headers: Mapping[str, str]) -> tuple[Path, int]:
        """Where the body of a PUT goes and how many bytes it may have, or `UploadRefused` (the route's 4xx)."""
        if not is_upload_id(upload_id):
            raise UploadRefused(404, "no such upload")
        expires, max_bytes = _number(query.get("expires", "")), _number(query.get("max", ""))
        signature = query.get("sig", "")
        if expires is None or max_bytes is None or not signature.isascii():
            raise UploadRefused(403, "invalid upload signature")
        if not hmac.compare_digest(self._signature(upload_id, expires, max_bytes), signature):
            raise UploadRefused(403, "invalid upload signature")
        if expires < time.time():
            raise UploadRefused(403, "upload URL expired; call create_upload again")
        if not (self.dir / f"{upload_id}.json").is_file():
            raise UploadRefused(404, "no such upload (deleted after its retention)")
        expected = mime_of_id(upload_id)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != expected:
            raise UploadRefused(415, f"Content-Type must be {expected}")
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is None and not chunked:
            raise UploadRefused(411, "Content-Length required")
        if length is not None:
            declared = _number(length.strip())
            if declared is None:
                raise UploadRefused(400, "invalid Content-Length")
            if declared > max_bytes:
                raise UploadRefused(413, f"body larger than the declared {max_bytes} bytes")
        if (self.dir / upload_id).exists():
            raise UploadRefused(409, "already uploaded; call create_upload for a new upload")
        return self.dir / upload_id, max_bytes

    async def receive(
        self, upload_id: str, query: Mapping[str, str], headers: Mapping[str, str], body: AsyncIterator[bytes]
    ) -> None:
        """Stream a checked PUT body to a temp file (never more than its limit), then link it into place."""
        final, max_bytes = await asyncio.to_thread(self.check_put, upload_id, query, headers)
        tmp = self.dir / f".{upload_id}.{secrets.token_hex(8)}.part"
        handle: IO[bytes] = await asyncio.to_thread(open, tmp, "xb")
        try:
            received = 0
            async for chunk in body:
                received += len(chunk)
                if received > max_bytes:
                    raise UploadRefused(413, f"body larger than the declared {max_bytes} bytes")
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(_link_once, tmp, final)
        finally:
            handle.close()
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(tmp.unlink)

    def read(self, upload_id: str, *, max_bytes: int, allow: MetadataCheck) -> bytes:
        """The bytes of an admitted, uploaded upload (blocking); `upload_not_found` otherwise."""
        if not is_upload_id(upload_id):
            raise upload_not_found(upload_id)
        try:
            record = json.loads((self.dir / f"{upload_id}.json").read_text(encoding="utf-8"))
            if not allow(record["metadata"]):
                raise upload_not_found(upload_id)
            path = self.dir / upload_id
            if path.stat().st_size > max_bytes:
                raise ImageGenError(ErrorCode.INVALID_ARGUMENT, f"upload {upload_id} is larger than {max_bytes} bytes")
            return path.read_bytes()
        except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
            raise upload_not_found(upload_id) from exc
        except OSError as exc:
            raise ImageGenError(ErrorCode.STORAGE_ERROR, "could not read the upload from the local store") from exc

    def sweep(self, now: float) -> int:
        """Delete uploads (bytes, records, stray temp files) older than the uploads' retention; how many went."""
        if not self.dir.is_dir():
            return 0
        cutoff = now - self._retention_seconds
        removed = 0
        for entry in self.dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += entry.suffix == ".json"
        return removed


def _link_once(tmp: Path, final: Path) -> None:
    try:
        os.link(tmp, final)  # atomic, and refuses an existing name: of two racing PUTs one wins
    except FileExistsError as exc:
        raise UploadRefused(409, "already uploaded; call create_upload for a new upload") from exc
