"""Uploads: opening an upload window for a caller (create_upload) and reading an upload back as an edit input."""

from __future__ import annotations

import shlex
from datetime import UTC
from typing import TYPE_CHECKING, Any

from ..access.ownership import OWNER_KEY, may_use, owner_of
from ..errors import ErrorCode, ImageGenError, clip, invalid
from ..storage.base import EXTENSIONS

if TYPE_CHECKING:
    from ..access.caller import Caller
    from ..access.ratelimit import RateLimiter
    from ..config import Settings
    from ..storage.base import ImageStore, UploadTicket

UPLOAD_MIME_TYPES = tuple(EXTENSIONS)
MAX_FILENAME_CHARS = 1024


def check_mime_type(mime_type: str) -> str:
    normalized = mime_type.strip().lower() if isinstance(mime_type, str) else ""
    if normalized not in EXTENSIONS:
        raise invalid(f"mime_type must be one of {', '.join(UPLOAD_MIME_TYPES)} (got {clip(mime_type)!r})")
    return normalized


def check_size(size_bytes: int, settings: Settings) -> int:
    limit = settings.max_input_image_bytes
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or not 1 <= size_bytes <= limit:
        raise invalid(f"size_bytes must be the file's size, 1 to {limit} bytes (the largest input image accepted)")
    return size_bytes


def local_path_argument(filename: str | None, mime_type: str) -> str:
    """The `--upload-file` argument of the curl line, shell-quoted: the agent's path, else ./photo.<ext>."""
    if filename is None or not filename.strip():
        return f"./photo.{EXTENSIONS[mime_type]}"
    name = filename.strip()
    if len(name) > MAX_FILENAME_CHARS or not name.isprintable():
        raise invalid(f"filename must be a printable path of at most {MAX_FILENAME_CHARS} characters")
    if name.startswith("~/"):
        return "~/" + shlex.quote(name[2:])  # the tilde outside the quotes, so the shell still expands it
    if not name.startswith(("/", "./", "../")):
        name = f"./{name}"  # a name starting with "-" is never read as an option
    return shlex.quote(name)


def curl_command(ticket: UploadTicket, local_path: str) -> str:
    headers = " ".join(f"-H {shlex.quote(f'{name}: {value}')}" for name, value in ticket.headers.items())
    return f"curl -fsS -X PUT {headers} --upload-file {local_path} {shlex.quote(ticket.url)}"


async def open_upload(
    settings: Settings,
    store: ImageStore,
    caller: Caller,
    *,
    mime_type: str,
    size_bytes: int,
    filename: str | None,
    base_url: str | None,
    limiter: RateLimiter | None = None,
) -> dict[str, Any]:
    """create_upload's answer: the upload id, its signed PUT (URL, headers, expiry) and a ready curl line.

    Valid requests take a token of the caller's rate limit (the bucket generation calls use): each upload window
    lets bytes into the store, so a caller cannot open them without bound.
    """
    mime = check_mime_type(mime_type)
    size = check_size(size_bytes, settings)
    local_path = local_path_argument(filename, mime)
    owner = owner_of(caller)
    if not (owner.isascii() and owner.isprintable()):
        # On GCS the owner travels as a signed request header, which must be printable ASCII.
        raise ImageGenError(ErrorCode.UNSUPPORTED, "this caller's id cannot be recorded on an upload")
    if limiter is not None:
        limiter.check(caller.id)
    ticket = await store.create_upload(
        mime_type=mime,
        size_bytes=size,
        ttl_seconds=settings.upload_ttl_seconds,
        metadata={OWNER_KEY: owner},
        base_url=base_url,
    )
    return {
        "id": ticket.id,
        "upload_url": ticket.url,
        "method": "PUT",
        "headers": dict(ticket.headers),
        "expires_at": ticket.expires_at.astimezone(UTC).isoformat(timespec="seconds"),
        "max_bytes": size,
        "curl": curl_command(ticket, local_path),
    }


async def read_upload(settings: Settings, store: ImageStore, upload_id: str, caller: Caller) -> bytes:
    """The bytes of `caller`'s upload (or one shared with it); `not_found` as for a missing one otherwise."""
    shared = settings.shared_owners
    return await store.read_upload(
        upload_id, max_bytes=settings.max_input_image_bytes, allow=lambda metadata: may_use(caller, metadata, shared)
    )
