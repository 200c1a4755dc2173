"""OpenRouter adapter: image output through its chat-completions API (`modalities` with image)."""

from __future__ import annotations

from typing import Any

from ..deadline import Deadline
from ..errors import ErrorCode, ImageGenError
from ..retry import call_with_retries
from ..secrets import base as secret_names
from . import upstream_http
from .base import ImageRequest, ProducedImage, ProviderResult
from .json_blobs import Base64Blob

VENDOR = "OpenRouter"

# Finish reasons (OpenRouter's normalised one and the upstream's native one) that mean a safety refusal.
_BLOCKED_FINISH = {"content_filter", "safety", "image_safety", "prohibited_content", "blocklist", "spii", "recitation"}


def parse_failure(status: int, body: Any) -> upstream_http.UpstreamFailure:
    message, code, metadata = upstream_http.error_fields(body)
    blocked = None
    reasons = metadata.get("reasons")
    if isinstance(reasons, list) and reasons:
        # Moderation refusals carry the flagged categories in metadata.reasons (HTTP 403).
        blocked = ", ".join(str(r) for r in reasons)
    elif code in ("moderation", "content_policy_violation", "moderation_blocked"):
        blocked = message or "content policy"
    return upstream_http.UpstreamFailure(message=message, code=code, blocked_reason=blocked)


class OpenRouterProvider(upstream_http.KeyedProvider):
    """`POST /chat/completions` with `modalities` including "image"; n images are n parallel calls."""

    name = "openrouter"
    secret_name = secret_names.OPENROUTER
    key_label = "OpenRouter API key"
    base_url_setting = "openrouter_base_url"

    def _headers(self) -> dict[str, str]:
        headers = {"X-Title": self._ctx.settings.openrouter_app_title}
        if self._ctx.settings.public_url:
            headers["HTTP-Referer"] = self._ctx.settings.public_url
        return headers

    def body(self, request: ImageRequest) -> dict[str, Any]:
        """The chat-completions request for one image."""
        options = request.options
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content += [
            {"type": "image_url", "image_url": {"url": upstream_http.data_url(img.data, img.mime_type)}}
            for img in request.images
        ]
        modalities = request.model.extra.get("openrouter_modalities") or ["image", "text"]
        body: dict[str, Any] = {
            "model": request.upstream_id,
            "messages": [{"role": "user", "content": content}],
            "modalities": list(modalities),
            "stream": False,
        }
        image_config: dict[str, str] = {}
        if options.aspect_ratio:
            image_config["aspect_ratio"] = options.aspect_ratio
        if options.image_size:
            image_config["image_size"] = options.image_size
        if image_config:
            body["image_config"] = image_config
        if options.seed is not None:
            body["seed"] = options.seed
        return body

    async def generate(self, request: ImageRequest) -> ProviderResult:
        key = await self._key()
        body = self.body(request)
        url = f"{self._base}/chat/completions"
        headers = self._headers()

        async def attempt(_: int) -> tuple[list[ProducedImage], str | None]:
            answer = await upstream_http.request_json(
                self._ctx,
                VENDOR,
                "POST",
                url,
                deadline=request.deadline,
                secret=key,
                parse_failure=parse_failure,
                headers=headers,
                json=body,
            )
            return await self._images(answer, key, request.deadline)

        async def one() -> tuple[list[ProducedImage], str | None]:
            return await call_with_retries(
                attempt,
                deadline=request.deadline,
                max_attempts=self._ctx.settings.upstream_max_attempts,
                what=f"openrouter {request.upstream_id}",
            )

        await request.report(f"calling OpenRouter {request.upstream_id}")
        results = await upstream_http.gather_all(one for _ in range(request.options.n))
        images = [image for found, _ in results for image in found]
        texts = [text for _, text in results if text]
        return ProviderResult(images=images[: request.options.n], text="\n".join(texts) or None)

    async def _images(
        self, body: dict[str, Any], key: str, deadline: Deadline
    ) -> tuple[list[ProducedImage], str | None]:
        if "error" in body and not body.get("choices"):
            # OpenRouter can report an upstream failure inside a 200 answer.
            status = body["error"].get("code") if isinstance(body["error"], dict) else None
            code = status if isinstance(status, int) and 400 <= status < 600 else 502
            raise upstream_http.status_error(VENDOR, code, parse_failure(code, body), None, secret=key)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise upstream_http.no_image_error(VENDOR)
        choice = choices[0]
        raw_message = choice.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        text = message.get("content") if isinstance(message.get("content"), str) else None
        refs = [
            item["image_url"]["url"]
            for item in message.get("images") or []
            if isinstance(item, dict)
            and isinstance(item.get("image_url"), dict)
            and isinstance(item["image_url"].get("url"), str | Base64Blob)
        ]
        if not refs:
            finish = {
                str(choice.get("finish_reason") or "").lower(),
                str(choice.get("native_finish_reason") or "").lower(),
            }
            if finish & _BLOCKED_FINISH:
                reason = upstream_http.trim(text or next(iter(finish & _BLOCKED_FINISH)), key)
                raise ImageGenError(
                    ErrorCode.CONTENT_BLOCKED,
                    f"{VENDOR} refused the request: {reason}",
                    details={"upstream": VENDOR, "reason": reason},
                )
            raise upstream_http.no_image_error(VENDOR, text, secret=key)
        images = [await upstream_http.image_from_reference(self._ctx, VENDOR, ref, deadline) for ref in refs]
        return images, text
