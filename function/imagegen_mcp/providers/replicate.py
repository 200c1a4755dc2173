"""Replicate adapter: official-model predictions with `Prefer: wait`, deadline-bounded polling, output download."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from ..deadline import Deadline
from ..errors import ErrorCode, ImageGenError
from ..retry import call_with_retries
from ..secrets import base as secret_names
from . import upstream_http
from .base import ImageRequest, ProducedImage, ProviderResult
from .json_blobs import Base64Blob

log = logging.getLogger(__name__)

VENDOR = "Replicate"
MAX_WAIT_SECONDS = 60  # Replicate's upper bound for `Prefer: wait`
CANCEL_TIMEOUT_SECONDS = 5.0
_TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MODEL = re.compile(r"^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*$")
_NSFW = re.compile(r"nsfw|sensitive|safety|flagged|E005|moderat", re.IGNORECASE)
_FORMATS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def parse_failure(status: int, body: Any) -> upstream_http.UpstreamFailure:
    message, code, _ = upstream_http.error_fields(body)
    if isinstance(body, dict) and isinstance(body.get("invalid_fields"), list) and body["invalid_fields"]:
        first = body["invalid_fields"][0]
        if isinstance(first, dict) and first.get("description"):
            message = f"{message or 'invalid input'}: {first['description']}"
    blocked = message if message and status in (400, 422) and _NSFW.search(message) else None
    return upstream_http.UpstreamFailure(message=message, code=code, blocked_reason=blocked)


def poll_delay(poll: int) -> float:
    """Seconds before poll number `poll` (1, 2, ...): quick at first, then every few seconds."""
    return min(5.0, 0.5 * 2.0 ** (poll - 1))


class ReplicateProvider(upstream_http.KeyedProvider):
    """`POST /models/{owner}/{name}/predictions`, then `GET /predictions/{id}` until done or out of time."""

    name = "replicate"
    secret_name = secret_names.REPLICATE
    key_label = "Replicate API token"
    base_url_setting = "replicate_base_url"

    def model_input(self, request: ImageRequest) -> dict[str, Any]:
        """The prediction `input` (FLUX.2 schema: prompt, input_images, aspect_ratio, seed, output_format)."""
        options = request.options
        data: dict[str, Any] = {"prompt": request.prompt, "output_format": _FORMATS[options.output_format]}
        if request.images:
            data["input_images"] = [upstream_http.data_url(img.data, img.mime_type) for img in request.images]
        if options.aspect_ratio:
            data["aspect_ratio"] = options.aspect_ratio
        elif request.images:
            data["aspect_ratio"] = "match_input_image"
        if options.seed is not None:
            data["seed"] = options.seed
        extra = request.model.extra.get("replicate_input")
        if isinstance(extra, dict):
            data.update(extra)
        return data

    async def generate(self, request: ImageRequest) -> ProviderResult:
        if not _MODEL.match(request.upstream_id):
            raise ImageGenError(
                ErrorCode.MISCONFIGURED, f"bad Replicate model id in the catalog: {request.upstream_id}"
            )
        key = await self._key()
        model_input = self.model_input(request)
        await request.report(f"calling Replicate {request.upstream_id}")
        outputs = await upstream_http.gather_all(
            (lambda: self._one(request, key, model_input)) for _ in range(request.options.n)
        )
        return ProviderResult(images=[image for images in outputs for image in images][: request.options.n])

    async def _one(self, request: ImageRequest, key: str, model_input: dict[str, Any]) -> list[ProducedImage]:
        deadline = request.deadline
        url = f"{self._base}/models/{request.upstream_id}/predictions"

        async def create(_: int) -> dict[str, Any]:
            wait = int(min(MAX_WAIT_SECONDS, deadline.remaining() - 1.0))
            headers = {"Prefer": f"wait={wait}"} if wait >= 1 else {}
            return await upstream_http.request_json(
                self._ctx,
                VENDOR,
                "POST",
                url,
                deadline=deadline,
                secret=key,
                parse_failure=parse_failure,
                headers=headers,
                # `Prefer: wait` holds the connection open up to `wait` seconds: let the attempt last that long.
                timeout_cap=max(self._ctx.settings.upstream_timeout_seconds, wait + 10.0),
                json={"input": model_input},
            )

        prediction = await call_with_retries(
            create, deadline=deadline, max_attempts=self._ctx.settings.upstream_max_attempts, what="replicate create"
        )
        prediction_id = prediction.get("id")
        if not isinstance(prediction_id, str) or not _ID.match(prediction_id):
            raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{VENDOR} answered without a usable prediction id")
        try:
            prediction = await self._until_done(prediction, prediction_id, key, deadline)
        except ImageGenError as err:
            if err.code is ErrorCode.UPSTREAM_TIMEOUT:
                await self._cancel(prediction_id, key)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(prediction_id, key))
            raise
        return await self._outputs(prediction, key, deadline)

    async def _until_done(
        self, prediction: dict[str, Any], prediction_id: str, key: str, deadline: Deadline
    ) -> dict[str, Any]:
        url = f"{self._base}/predictions/{prediction_id}"
        poll = 0
        while prediction.get("status") not in _TERMINAL:
            poll += 1
            delay = poll_delay(poll)
            if delay + 0.5 >= deadline.remaining():
                raise ImageGenError(
                    ErrorCode.UPSTREAM_TIMEOUT,
                    f"{VENDOR} prediction did not finish within the request deadline of {deadline.seconds:.0f}s",
                    details={"upstream": VENDOR, "status": str(prediction.get("status"))},
                )
            await asyncio.sleep(delay)

            async def get(_: int) -> dict[str, Any]:
                return await upstream_http.request_json(
                    self._ctx, VENDOR, "GET", url, deadline=deadline, secret=key, parse_failure=parse_failure
                )

            prediction = await call_with_retries(
                get, deadline=deadline, max_attempts=self._ctx.settings.upstream_max_attempts, what="replicate poll"
            )
        return prediction

    async def _cancel(self, prediction_id: str, key: str) -> None:
        """Best effort: stop paying for a prediction nobody will collect."""
        try:
            await upstream_http.request_json(
                self._ctx,
                VENDOR,
                "POST",
                f"{self._base}/predictions/{prediction_id}/cancel",
                deadline=Deadline(CANCEL_TIMEOUT_SECONDS),
                secret=key,
                parse_failure=parse_failure,
            )
        except ImageGenError as err:
            log.warning("could not cancel a Replicate prediction", extra={"fields": {"code": err.code.value}})

    async def _outputs(self, prediction: dict[str, Any], key: str, deadline: Deadline) -> list[ProducedImage]:
        status = prediction.get("status")
        if status != "succeeded":
            error = prediction.get("error")
            text = upstream_http.trim(str(error), key) if error else f"prediction {status}"
            if error and _NSFW.search(str(error)):
                raise ImageGenError(
                    ErrorCode.CONTENT_BLOCKED,
                    f"{VENDOR} refused the request: {text}",
                    details={"upstream": VENDOR, "reason": text},
                )
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR,
                f"{VENDOR} prediction {status}: {text}",
                retryable=status == "failed",
                details={"upstream": VENDOR},
            )
        output = prediction.get("output")
        urls = [output] if isinstance(output, str | Base64Blob) else output if isinstance(output, list) else []
        refs = [u for u in urls if isinstance(u, str | Base64Blob) and u]
        if not refs:
            raise upstream_http.no_image_error(VENDOR)
        return [await upstream_http.image_from_reference(self._ctx, VENDOR, ref, deadline) for ref in refs]
