"""Turns the image references callers send (data URL, base64, URL, gs://, output or upload id) into vetted bytes."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from .. import base64_codec
from ..access.ownership import may_use
from ..errors import ErrorCode, ImageGenError, invalid
from ..storage.base import is_upload_id
from .budget import DecodeBudget, PixelAllowance
from .imaging import InputPlan, has_alpha, load_input_image, plan_input
from .types import InputImage
from .uploads import read_upload

if TYPE_CHECKING:
    from ..access.caller import Caller
    from ..config import Settings
    from ..storage.base import ImageStore
    from .fetcher import GuardedFetcher

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w=.+-]+)*);base64,", re.IGNORECASE)
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_STANDARD_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def _describe(ref: str) -> str:
    return ref[:60] + ("…" if len(ref) > 60 else "")


_THREAD_CHARS = 4 * 1024 * 1024  # larger texts are decoded off the event loop (~1 ms each; the GIL is let go)
_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")


async def decode_base64_off_loop(text: str, *, max_bytes: int | None = None) -> bytes:
    """`decode_base64` for caller inputs, in a worker thread when the text is large."""
    if len(text) <= _THREAD_CHARS:
        return decode_base64(text, max_bytes=max_bytes)
    return await asyncio.to_thread(decode_base64, text, max_bytes=max_bytes)


def decode_base64(text: str, *, max_bytes: int | None = None, lenient: bool = True) -> bytes:
    """Strict base64, whitespace tolerated, size-checked before decoding; `invalid_argument` otherwise.

    `lenient` also takes the URL-safe alphabet and missing padding (what callers send); upstream answers are
    held to the standard alphabet with padding. Well-formed input is decoded without a regex pass over it.
    """
    if max_bytes is not None and (len(text) * 3) // 4 > max_bytes + 3:
        if (len("".join(text.split())) * 3) // 4 > max_bytes + 3:
            raise invalid(f"input image is larger than {max_bytes} bytes")
    if text.strip():
        try:
            return base64_codec.decode(text)
        except (base64_codec.Error, ValueError):
            pass
    compact = "".join(text.split())
    if not (_BASE64_CHARS if lenient else _STANDARD_BASE64_CHARS).fullmatch(compact):
        raise invalid("input image is not valid base64")
    padded = compact + "=" * (-len(compact) % 4) if lenient else compact
    try:
        return base64_codec.decode(padded.translate(_URL_SAFE_TO_STANDARD))
    except (base64_codec.Error, ValueError) as exc:
        raise invalid("input image is not valid base64") from exc


class InputResolver:
    """Resolves references with the store (our outputs, gs://) and the guarded fetcher (URLs)."""

    def __init__(self, settings: Settings, store: ImageStore, fetcher: GuardedFetcher, budget: DecodeBudget) -> None:
        self._settings = settings
        self._store = store
        self._fetcher = fetcher
        self._budget = budget

    async def raw_bytes(self, ref: str, *, caller: Caller) -> bytes:
        """The bytes `ref` names; an output or upload of this server only if `caller` may use it (else `not_found`)."""
        settings = self._settings
        limit = settings.max_input_image_bytes
        if not isinstance(ref, str) or not ref.strip():
            raise invalid("an image reference must be a non-empty string")
        ref = ref.strip()
        match = _DATA_URL.match(ref)
        if match:
            return await decode_base64_off_loop(ref[match.end() :], max_bytes=limit)
        if ref.lower().startswith("data:"):
            raise invalid("data URLs must be base64-encoded (data:image/png;base64,...)")
        if is_upload_id(ref):
            return await read_upload(settings, self._store, ref, caller)
        own_id = self._store.resolve_reference(ref)
        if own_id is not None:
            shared = settings.shared_owners
            found = await self._store.read(own_id, max_bytes=limit, allow=lambda meta: may_use(caller, meta, shared))
            return found.data
        lowered = ref.lower()
        if lowered.startswith("gs://"):
            return (await self._store.read_uri(ref, max_bytes=limit)).data
        if lowered.startswith(("https://", "http://")):
            fetched = await self._fetcher.fetch(ref, max_bytes=limit, require_image=True)
            return fetched.data
        if "://" in ref[:16]:
            raise invalid(
                f"unsupported image reference {_describe(ref)!r}: use a data URL, base64, an https URL, "
                "a gs:// URI, the id of an earlier output or a create_upload id"
            )
        if len(ref) < 64:
            raise ImageGenError(
                ErrorCode.NOT_FOUND,
                f"{_describe(ref)!r} is not the id of an output or upload of this server "
                "(and too short to be base64 image data)",
            )
        return await decode_base64_off_loop(ref, max_bytes=limit)

    async def _plan(self, ref: str, caller: Caller) -> tuple[bytes, InputPlan]:
        data = await self.raw_bytes(ref, caller=caller)
        settings = self._settings
        plan = await asyncio.to_thread(
            plan_input, data, max_pixels=settings.max_input_pixels, max_bytes=settings.max_input_image_bytes
        )
        return data, plan

    async def _vet(self, data: bytes, plan: InputPlan, what: str) -> InputImage:
        settings = self._settings
        async with self._budget.hold(plan.cost, what):
            return await asyncio.to_thread(
                load_input_image,
                data,
                max_pixels=settings.max_input_pixels,
                max_bytes=settings.max_input_image_bytes,
                plan=plan,
            )

    async def resolve_all(
        self, refs: list[str], mask: str | None, allowance: PixelAllowance, *, caller: Caller
    ) -> tuple[list[InputImage], InputImage | None]:
        """All inputs concurrently; headers first (the call's pixel cap), then pixels under the decode budget.

        The mask must match the first image's size.
        """
        all_refs = [*refs, *([mask] if mask is not None else [])]
        names = [f"input image {i + 1}" for i in range(len(refs))] + (["the mask"] if mask is not None else [])
        try:
            planned = await asyncio.gather(*(self._plan(r, caller) for r in all_refs))
            for name, (_data, plan) in zip(names, planned, strict=True):
                allowance.take(plan.info.width * plan.info.height, name)
            resolved = await asyncio.gather(
                *(self._vet(data, plan, name) for name, (data, plan) in zip(names, planned, strict=True))
            )
        except ImageGenError as err:
            if err.code == ErrorCode.INVALID_ARGUMENT:
                raise invalid(f"input image rejected: {err.message}") from err
            raise
        images = list(resolved[: len(refs)])
        mask_image = resolved[len(refs)] if mask is not None else None
        if mask_image is not None and (
            mask_image.mime_type != "image/png" or not await asyncio.to_thread(has_alpha, mask_image.data)
        ):
            raise invalid("mask must be a PNG with an alpha channel (fully transparent pixels mark the area to edit)")
        if mask_image is not None and (mask_image.width, mask_image.height) != (images[0].width, images[0].height):
            raise invalid(
                f"mask is {mask_image.width}x{mask_image.height} but the first image is "
                f"{images[0].width}x{images[0].height}; they must match"
            )
        return images, mask_image
