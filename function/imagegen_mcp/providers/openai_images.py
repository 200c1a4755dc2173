"""OpenAI Images API adapter (GPT Image models): generations (JSON) and edits (multipart, with mask)."""

from __future__ import annotations

import math
from typing import Any

from ..deadline import Deadline
from ..images.types import InputImage
from ..retry import call_with_retries
from ..secrets import base as secret_names
from ..storage.base import EXTENSIONS
from . import upstream_http
from .base import ImageRequest, ProducedImage, ProviderResult
from .json_blobs import Base64Blob

VENDOR = "OpenAI"

# Every model the catalog sends here takes flexible sizes (the gpt-image-2 family; the fixed-size
# gpt-image-1.x models are shut down): edges multiples of 16, long edge ≤ 3840, long/short ≤ 3,
# 655,360 … 8,294,400 pixels. Tier → target pixel count.
_TIER_PIXELS = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 8_294_400}
_MIN_PIXELS, _MAX_PIXELS, _MAX_EDGE = 655_360, 8_294_400, 3840

_BLOCKED_CODES = {"moderation_blocked", "content_policy_violation", "content_filter"}


def flexible_size(aspect_ratio: str, tier: str) -> str:
    """A `WxH` satisfying the flexible-size rules, as close to `aspect_ratio` and the tier's pixel count as allowed."""
    a, b = (int(part) for part in aspect_ratio.split(":"))
    pixels = _TIER_PIXELS[tier]
    width = math.sqrt(pixels * a / b)
    height = math.sqrt(pixels * b / a)
    scale = min(1.0, _MAX_EDGE / max(width, height))
    w = int(width * scale) // 16 * 16
    h = int(height * scale) // 16 * 16
    while w * h > _MAX_PIXELS:
        w, h = (w - 16, h) if w >= h else (w, h - 16)
    while w * h < _MIN_PIXELS:
        w, h = (w + 16, h) if w <= h else (w, h + 16)
    return f"{w}x{h}"


def parse_failure(status: int, body: Any) -> upstream_http.UpstreamFailure:
    message, code, _ = upstream_http.error_fields(body)
    blocked = None
    if code in _BLOCKED_CODES or (status == 400 and message and "safety system" in message.lower()):
        blocked = message or "content policy"
    return upstream_http.UpstreamFailure(message=message, code=code, blocked_reason=blocked)


class OpenAIImagesProvider(upstream_http.KeyedProvider):
    """`POST /images/generations` and `POST /images/edits` of the OpenAI API (or a compatible proxy)."""

    name = "openai"
    secret_name = secret_names.OPENAI
    key_label = "OpenAI API key"
    base_url_setting = "openai_base_url"

    def _size(self, request: ImageRequest) -> str | None:
        options = request.options
        if options.aspect_ratio is None and options.image_size is None:
            return None  # the API's "auto" (for edits: follows the input image)
        return flexible_size(options.aspect_ratio or "1:1", options.image_size or "1K")

    def _fields(self, request: ImageRequest) -> dict[str, Any]:
        options = request.options
        fields: dict[str, Any] = {
            "model": request.upstream_id,
            "prompt": request.prompt,
            "n": options.n,
            "output_format": options.output_format,
        }
        size = self._size(request)
        if size:
            fields["size"] = size
        if options.quality:
            fields["quality"] = options.quality
        if options.background:
            fields["background"] = options.background
        if self._ctx.settings.openai_moderation != "auto":
            fields["moderation"] = self._ctx.settings.openai_moderation
        return fields

    async def generate(self, request: ImageRequest) -> ProviderResult:
        key = await self._key()
        fields = self._fields(request)
        payload: dict[str, Any]
        if request.is_edit:
            url = f"{self._base}/images/edits"
            files: list[tuple[str, tuple[str, bytes, str]]] = [
                ("image[]", (f"image{i}.{EXTENSIONS.get(img.mime_type, 'png')}", img.data, img.mime_type))
                for i, img in enumerate(request.images)
            ]
            if request.mask is not None:
                files.append(("mask", ("mask.png", await _png_mask(request.mask), "image/png")))
            payload = {"data": {k: str(v) for k, v in fields.items()}, "files": files}
        else:
            url = f"{self._base}/images/generations"
            payload = {"json": fields}

        async def attempt(_: int) -> dict[str, Any]:
            return await upstream_http.request_json(
                self._ctx,
                VENDOR,
                "POST",
                url,
                deadline=request.deadline,
                secret=key,
                parse_failure=parse_failure,
                **payload,
            )

        await request.report(f"calling OpenAI {request.upstream_id}")
        body = await call_with_retries(
            attempt,
            deadline=request.deadline,
            max_attempts=self._ctx.settings.upstream_max_attempts,
            what=f"openai {request.upstream_id}",
        )
        images = await self._images(body, key, request.deadline)
        details: dict[str, object] = {}
        for field in ("size", "quality", "background", "output_format"):
            if isinstance(body.get(field), str):
                details[field] = body[field]
        revised = next(
            (
                d.get("revised_prompt")
                for d in body.get("data") or []
                if isinstance(d, dict) and d.get("revised_prompt")
            ),
            None,
        )
        return ProviderResult(images=images, text=revised, details=details)

    async def _images(self, body: dict[str, Any], key: str, deadline: Deadline) -> list[ProducedImage]:
        data = body.get("data")
        if not isinstance(data, list):
            raise upstream_http.no_image_error(VENDOR)
        images: list[ProducedImage] = []
        for item in data:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("b64_json"), str | Base64Blob) and item["b64_json"]:
                images.append(upstream_http.produced(VENDOR, upstream_http.decode_base64(VENDOR, item["b64_json"])))
            elif isinstance(item.get("url"), str) and item["url"]:
                images.append(await upstream_http.image_from_reference(self._ctx, VENDOR, item["url"], deadline))
        if not images:
            raise upstream_http.no_image_error(VENDOR, secret=key)
        return images


async def _png_mask(mask: InputImage) -> bytes:
    """The mask as the PNG (with alpha) the edits endpoint requires; non-PNG masks are converted off the loop."""
    if mask.mime_type == "image/png":
        return mask.data
    import asyncio

    def convert() -> bytes:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(mask.data)) as img:
            out = io.BytesIO()
            img.convert("RGBA").save(out, format="PNG")
            return out.getvalue()

    return await asyncio.to_thread(convert)
