"""Local folder store: outputs as files, handed out as expiring HMAC-signed `/files/...` links; uploads beside them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..config import Settings
from ..errors import ErrorCode, ImageGenError
from .base import (
    MetadataCheck,
    SignedUrl,
    StoredBytes,
    StoredImage,
    UploadTicket,
    is_image_id,
    mime_of_id,
    new_image_id,
    output_not_found,
)
from .local_uploads import LocalUploads

# A small image is written on the event loop (~0.2 ms here for the file and its sidecar): cheaper than the hop to a
# worker thread, which under load also waits for the busy loop to hand it the GIL after every system call.
INLINE_WRITE_BYTES = 256 * 1024


class LocalStore:
    """Files under `settings.local_dir`; metadata in a JSON sidecar; retention enforced by `sweep()`."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.root = Path(settings.local_dir).expanduser().resolve()
        self._key: bytes | None = settings.signing_key.get_secret_value().encode() if settings.signing_key else None
        self.uploads = LocalUploads(self.root, self._signing_key, settings.upload_retention_days)

    # --- helpers ---------------------------------------------------------------------------------------------
    def _path(self, image_id: str) -> Path:
        if not is_image_id(image_id):
            raise ImageGenError(ErrorCode.NOT_FOUND, "no such image")
        return self.root / image_id

    def _signing_key(self) -> bytes:
        if self._key is None:
            self.root.mkdir(parents=True, exist_ok=True)
            key_file = self.root / ".signing-key"
            try:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._key = key_file.read_bytes().strip()
            else:
                key = secrets.token_hex(32).encode()
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key)
                self._key = key
        return self._key

    def _signature(self, image_id: str, expires: int) -> str:
        return hmac.new(self._signing_key(), f"{image_id}\n{expires}".encode(), hashlib.sha256).hexdigest()

    # --- ImageStore ------------------------------------------------------------------------------------------
    async def startup_check(self) -> None:
        try:
            await asyncio.to_thread(self._prepare)
        except OSError as exc:
            raise ImageGenError(
                ErrorCode.MISCONFIGURED, f"local store folder {self.root} is not writable: {exc.strerror}"
            ) from exc

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._signing_key()
        probe = self.root / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()

    async def put(self, data: bytes, *, mime_type: str, metadata: Mapping[str, str]) -> StoredImage:
        now = datetime.now(UTC)
        image_id = new_image_id(mime_type, now)
        meta = {**metadata, "content_type": mime_type, "created_at": now.isoformat()}
        try:
            if len(data) <= INLINE_WRITE_BYTES:
                self._write(image_id, data, meta)
            else:
                await asyncio.to_thread(self._write, image_id, data, meta)
        except OSError as exc:
            raise ImageGenError(ErrorCode.STORAGE_ERROR, "could not write the image to the local store") from exc
        return StoredImage(image_id, (self.root / image_id).as_uri(), mime_type, len(data), now, dict(metadata))

    def _write(self, image_id: str, data: bytes, meta: Mapping[str, str]) -> None:
        # The folder is made at startup; it is made again only when a write finds it gone (a mkdir and a stat per
        # write were ~3 % of a warm call's CPU).
        try:
            self._write_files(image_id, data, meta)
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_files(image_id, data, meta)

    def _write_files(self, image_id: str, data: bytes, meta: Mapping[str, str]) -> None:
        final = self.root / image_id
        tmp = final.with_name(f".{image_id}.tmp")
        try:
            tmp.write_bytes(data)
            (self.root / f"{image_id}.json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, final)  # the image appears only when complete
        except BaseException:
            for leftover in (tmp, self.root / f"{image_id}.json"):
                leftover.unlink(missing_ok=True)
            raise

    def _base(self, base_url: str | None) -> str:
        return (base_url or self._settings.public_url or f"http://127.0.0.1:{self._settings.port}").rstrip("/")

    async def sign(self, image_id: str, *, ttl_seconds: int, base_url: str | None) -> SignedUrl:
        self._path(image_id)
        expires = int(time.time()) + ttl_seconds
        base = self._base(base_url)
        sig = self._signature(image_id, expires)  # one HMAC over ~40 bytes: a thread hop would cost more
        return SignedUrl(f"{base}/files/{image_id}?expires={expires}&sig={sig}", datetime.fromtimestamp(expires, UTC))

    def verify(self, image_id: str, expires: str, signature: str) -> Path:
        """The file a `/files` link points at, if its signature is valid and unexpired (else not_found/forbidden)."""
        # isascii: str.isdigit() is also true for "²" and other digits int() refuses.
        if not is_image_id(image_id) or not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            raise ImageGenError(ErrorCode.NOT_FOUND, "no such file")
        expected = self._signature(image_id, int(expires))
        if not signature.isascii() or not hmac.compare_digest(expected, signature):
            raise ImageGenError(ErrorCode.FORBIDDEN, "invalid link signature")
        if int(expires) < time.time():
            raise ImageGenError(ErrorCode.FORBIDDEN, "link expired")
        path = self._path(image_id)
        if not path.is_file():
            raise ImageGenError(ErrorCode.NOT_FOUND, "no such file")
        return path

    async def read(self, image_id: str, *, max_bytes: int, allow: MetadataCheck | None = None) -> StoredBytes:
        path = self._path(image_id)

        def read_checked() -> StoredBytes:  # one worker-thread hop for the owner check, the size check and the read
            meta = self._sidecar(path)
            if allow is not None and not allow(meta):
                raise output_not_found(image_id)
            if path.stat().st_size > max_bytes:
                raise ImageGenError(ErrorCode.INVALID_ARGUMENT, f"image {image_id} is larger than {max_bytes} bytes")
            return StoredBytes(path.read_bytes(), mime_of_id(image_id), meta)

        try:
            return await asyncio.to_thread(read_checked)
        except FileNotFoundError as exc:
            raise output_not_found(image_id) from exc

    async def metadata(self, image_id: str) -> dict[str, str]:
        path = self._path(image_id)
        try:
            return await asyncio.to_thread(self._sidecar, path)
        except FileNotFoundError as exc:
            raise output_not_found(image_id) from exc

    @staticmethod
    def _sidecar(path: Path) -> dict[str, str]:
        """The JSON sidecar of an existing output (FileNotFoundError when the image is gone; {} if it has none)."""
        if not path.is_file():
            raise FileNotFoundError(path)
        try:
            loaded = json.loads(path.with_name(f"{path.name}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def resolve_reference(self, ref: str) -> str | None:
        ref = ref.strip()
        if is_image_id(ref):
            return ref
        parsed = urlparse(ref)
        if parsed.scheme == "file":
            path = Path(parsed.path)
            return path.name if path.parent == self.root and is_image_id(path.name) else None
        if parsed.scheme in ("http", "https"):
            # Decoded and without empty segments, as the router would see it: `/files/%32…`, `//files/…/` and a
            # path-prefixed deployment all name the same output, which must not be fetched as a foreign URL.
            segments = [part for part in unquote(parsed.path).split("/") if part]
            if len(segments) >= 2 and segments[-2] == "files" and is_image_id(segments[-1]):
                return segments[-1]
        return None

    async def read_uri(self, uri: str, *, max_bytes: int) -> StoredBytes:
        raise ImageGenError(
            ErrorCode.UNSUPPORTED,
            "gs:// inputs need the gcs store (IMAGEGEN_STORAGE=gcs); this deployment stores locally",
        )

    async def create_upload(
        self,
        *,
        mime_type: str,
        size_bytes: int,
        ttl_seconds: int,
        metadata: Mapping[str, str],
        base_url: str | None,
    ) -> UploadTicket:
        try:
            return await asyncio.to_thread(
                lambda: self.uploads.create(
                    mime_type=mime_type,
                    size_bytes=size_bytes,
                    ttl_seconds=ttl_seconds,
                    metadata=metadata,
                    base=self._base(base_url),
                )
            )
        except OSError as exc:
            raise ImageGenError(ErrorCode.STORAGE_ERROR, "could not record the upload in the local store") from exc

    async def read_upload(self, upload_id: str, *, max_bytes: int, allow: MetadataCheck) -> bytes:
        return await asyncio.to_thread(lambda: self.uploads.read(upload_id, max_bytes=max_bytes, allow=allow))

    async def delete(self, image_id: str) -> None:
        path = self._path(image_id)
        await asyncio.to_thread(self._unlink, path)

    @staticmethod
    def _unlink(path: Path) -> None:
        path.unlink(missing_ok=True)
        path.with_name(f"{path.name}.json").unlink(missing_ok=True)

    async def sweep(self, now: float | None = None) -> int:
        """Delete outputs and uploads older than their retention periods; returns how many were deleted."""
        when = now or time.time()
        return await asyncio.to_thread(lambda: self._sweep(when) + self.uploads.sweep(when))

    def _sweep(self, now: float) -> int:
        if not self.root.is_dir():
            return 0
        cutoff = now - self._settings.retention_days * 86400
        removed = 0
        for entry in self.root.iterdir():
            if is_image_id(entry.name) and entry.stat().st_mtime < cutoff:
                self._unlink(entry)
                removed += 1
        return removed

    async def aclose(self) -> None:
        return None
