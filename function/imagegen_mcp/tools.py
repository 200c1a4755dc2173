"""Tool bodies: the generate/edit pipeline (validate → route → inputs → upstream → store → sign) and list_models."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .access.ownership import OWNER_KEY, owner_of
from .catalog import GenerationOptions, ModelSpec, check_options
from .deadline import Deadline
from .errors import ErrorCode, ImageGenError, invalid
from .images.budget import PixelAllowance
from .images.download import link_fields
from .images.imaging import FinalImage, finalize_cost, finalize_output, make_preview, output_info, preview_cost
from .images.inputs import InputResolver
from .images.types import InputImage
from .logs import log_fields
from .providers.base import ImageRequest, ProducedImage
from .storage.base import StoredImage
from .usage.meter import Metered, UsageMeter
from .usage.prices import price_per_image

if TYPE_CHECKING:
    from .access.caller import Caller
    from .deps import Deps
    from .providers.routing import Route

log = logging.getLogger(__name__)

ProgressSink = Callable[[float, str], Awaitable[None]]
PROMPT_ECHO_CHARS = 500
HEARTBEAT_SECONDS = 2.0
# An output already in the asked format is checked on the event loop up to this size (cheaper than a thread hop;
# stripping its metadata may copy it once).
INLINE_FINALIZE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CallContext:
    """Who is calling and how to talk back, for one tool call."""

    caller: Caller
    request_id: str
    base_url: str | None = None
    progress: ProgressSink | None = None
    # Awaited just before the upstream call (a job records that the generation may now be billed).
    before_upstream: Callable[[], Awaitable[None]] | None = None
    job_id: str | None = None  # the job running this call, for its usage record


@dataclass
class ImageOutcome:
    """A finished generation: stored images with links, plus what the model said."""

    structured: dict[str, Any]
    images: list[tuple[StoredImage, str, FinalImage]]
    preview: tuple[bytes, str] | None


class _Progress:
    """Monotonic progress notifications plus a heartbeat while the upstream works."""

    def __init__(self, sink: ProgressSink | None) -> None:
        self._sink = sink
        self._step = 0.0

    async def __call__(self, message: str) -> None:
        if self._sink is None:
            return
        self._step += 1
        try:
            await self._sink(self._step, message)
        except Exception:  # a client that stopped listening must not fail the generation
            log.debug("progress notification failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def heartbeat(self, message: str) -> AsyncIterator[None]:
        if self._sink is None:
            yield
            return

        async def beat() -> None:
            started = time.monotonic()
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                await self(f"{message} ({time.monotonic() - started:.0f}s)")

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _check_prompt(prompt: str, max_chars: int) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt must be a non-empty string")
    if "\x00" in prompt:
        raise invalid("prompt must not contain NUL characters")
    if len(prompt) > max_chars:
        raise invalid(f"prompt is {len(prompt)} characters; at most {max_chars} are accepted")
    return prompt.strip()


def _prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class ImageTools:
    """The tools' logic, independent of MCP framing."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.inputs = InputResolver(deps.settings, deps.store, deps.fetcher, deps.budget)
        self.usage = UsageMeter(deps)

    async def list_models(self) -> dict[str, Any]:
        statuses = await self.deps.router.status()
        default = await self.deps.effective_default_model()
        models = []
        for status in statuses:
            spec = status.model
            entry: dict[str, Any] = {
                "id": spec.id,
                "title": spec.title,
                "description": spec.description,
                "provider": status.live_provider,
                "providers": [o.provider for o in spec.offers],
                "available": status.live_provider is not None,
                "capabilities": spec.capabilities.as_dict(),
                "origin": spec.origin,
                "source": spec.source,
                "checked": spec.checked,
                "pricing": spec.pricing.as_dict() if spec.pricing else None,
                "price_per_image_usd": price_per_image(spec),
            }
            if status.reason:
                entry["unavailable_reason"] = status.reason
            if spec.replaced_by:
                entry["replaced_by"] = spec.replaced_by
            models.append(entry)
        return {"default_model": default, "models": models}

    async def check(
        self,
        call: CallContext,
        *,
        prompt: str,
        model: str | None,
        options: GenerationOptions,
        images: list[str] | None = None,
        mask: str | None = None,
    ) -> tuple[str, ModelSpec, Route]:
        """Everything about a call that can be refused without touching an input or the upstream."""
        deps = self.deps
        prompt = _check_prompt(prompt, deps.settings.max_prompt_chars)
        model_id = model or await deps.effective_default_model()
        if images is not None and not images:
            raise invalid("images must name at least one input image")
        if mask is not None and images is None:
            raise invalid("a mask needs input images")
        log_fields(model=model_id)
        if not call.caller.may_use(model_id):
            raise ImageGenError(ErrorCode.FORBIDDEN, f"this API key may not use model {model_id!r}")
        spec = await deps.router.model(model_id)  # curated or discovered
        check_options(spec, options, inputs=len(images or ()), mask=mask is not None)
        route = await deps.router.route(model_id)
        log_fields(provider=route.provider.name)
        return prompt, spec, route

    async def run(self, call: CallContext, **arguments: Any) -> ImageOutcome:
        """One generate/edit call (arguments as `_run` takes them), metered: quota held, usage settled and recorded."""
        async with self.usage.metered(call) as meter:
            return await self._run(call, meter, **arguments)

    async def _run(
        self,
        call: CallContext,
        meter: Metered,
        *,
        prompt: str,
        model: str | None,
        options: GenerationOptions,
        preview: bool | None,
        images: list[str] | None = None,
        mask: str | None = None,
    ) -> ImageOutcome:
        deps = self.deps
        settings = deps.settings
        deadline = Deadline(settings.request_deadline_seconds)
        progress = _Progress(call.progress)
        prompt, spec, route = await self.check(
            call, prompt=prompt, model=model, options=options, images=images, mask=mask
        )
        edit = images is not None

        inputs: list[InputImage] = []
        mask_image: InputImage | None = None
        allowance = PixelAllowance(settings.request_pixel_cap)
        if edit:
            await progress(f"reading {len(images or ())} input image(s)")
            inputs, mask_image = await self.inputs.resolve_all(list(images or ()), mask, allowance, caller=call.caller)

        request = ImageRequest(
            prompt=prompt,
            model=spec,
            upstream_id=route.offer.upstream_id,
            options=options,
            deadline=deadline,
            images=tuple(inputs),
            mask=mask_image,
            progress=progress,
        )
        await meter.reserve(
            spec, route.provider.name, options, operation="edit" if edit else "generate", inputs=len(inputs)
        )
        # Said first, so a job records it with the upstream flag (one write) instead of in a write of its own.
        await progress(f"calling {spec.id} via {route.provider.name}")
        if call.before_upstream is not None:
            await call.before_upstream()
        meter.reached_upstream()
        async with progress.heartbeat(f"waiting for {spec.id}"):
            try:
                async with asyncio.timeout(deadline.remaining()):
                    result = await route.provider.generate(request)
            except TimeoutError as exc:
                raise ImageGenError(
                    ErrorCode.UPSTREAM_TIMEOUT,
                    f"{spec.id} did not answer within {settings.request_deadline_seconds:.0f}s",
                ) from exc
        produced = result.images[: options.n]
        if not produced:
            raise ImageGenError(ErrorCode.UPSTREAM_ERROR, f"{spec.id} returned no image")
        meter.produced(len(produced))

        await progress(f"storing {len(produced)} image(s)")
        finals = await self._finalize_all(produced, options.output_format, allowance)
        metadata = {
            "model": spec.id,
            "provider": route.provider.name,
            "prompt_sha256": _prompt_hash(prompt),
            "caller": call.caller.id,
            OWNER_KEY: owner_of(call.caller),
            "request_id": call.request_id,
            "operation": "edit" if edit else "generate",
        }
        stored = await self._store_all(finals, metadata)
        try:
            links = await asyncio.gather(
                *(deps.store.sign(s.id, ttl_seconds=settings.url_ttl_seconds, base_url=call.base_url) for s in stored)
            )
        except BaseException:
            await self._discard(stored)
            raise
        preview_blob = None
        if settings.preview_default if preview is None else preview:
            preview_blob = await self._preview(finals[0])

        items = []
        for index, (s, link, final) in enumerate(zip(stored, links, finals, strict=True)):
            items.append(
                {
                    "id": s.id,
                    "uri": s.uri,
                    "mime_type": final.mime_type,
                    "width": final.width,
                    "height": final.height,
                    "size_bytes": s.size_bytes,
                    # From the prompt as echoed, so get_job (which has only the echo) names the file the same.
                    **link_fields(link, prompt[:PROMPT_ECHO_CHARS], final.mime_type, index=index, count=len(stored)),
                }
            )
        structured: dict[str, Any] = {
            "images": items,
            "model": spec.id,
            "provider": route.provider.name,
            "prompt": prompt[:PROMPT_ECHO_CHARS],
            "text": (result.text or None),
            "operation": metadata["operation"],
            "estimated_cost_usd": meter.cost_usd,
        }
        if len(prompt) > PROMPT_ECHO_CHARS:
            structured["prompt_truncated"] = True
        await progress("done")
        return ImageOutcome(
            structured, [(s, link.url, f) for s, link, f in zip(stored, links, finals, strict=True)], preview_blob
        )

    async def _finalize_all(
        self, produced: list[ProducedImage], output_format: str, allowance: PixelAllowance
    ) -> list[FinalImage]:
        """Headers and the call's pixel cap first; then each image checked/transcoded under the decode budget."""
        settings, budget = self.deps.settings, self.deps.budget
        infos = [output_info(img.data, max_pixels=settings.max_input_pixels) for img in produced]
        for index, info in enumerate(infos):
            allowance.take(info.width * info.height, f"output image {index + 1}")

        async def one(img: ProducedImage, cost: int) -> FinalImage:
            if cost == 0 and len(img.data) <= INLINE_FINALIZE_BYTES:  # a header check and a chunk walk only
                return finalize_output(img.data, output_format=output_format, max_pixels=settings.max_input_pixels)
            async with budget.hold(cost, "an output image"):
                return await asyncio.to_thread(
                    finalize_output, img.data, output_format=output_format, max_pixels=settings.max_input_pixels
                )

        return list(
            await asyncio.gather(
                *(one(img, finalize_cost(i, output_format)) for img, i in zip(produced, infos, strict=True))
            )
        )

    async def _preview(self, final: FinalImage) -> tuple[bytes, str]:
        max_px = self.deps.settings.preview_max_px
        info = output_info(final.data, max_pixels=final.width * final.height)
        async with self.deps.budget.hold(preview_cost(info, max_px), "the preview"):
            return await asyncio.to_thread(make_preview, final.data, max_px=max_px)

    async def _store_all(self, finals: list[FinalImage], metadata: dict[str, str]) -> list[StoredImage]:
        store = self.deps.store
        results = await asyncio.gather(
            *(store.put(f.data, mime_type=f.mime_type, metadata=metadata) for f in finals), return_exceptions=True
        )
        stored = [r for r in results if isinstance(r, StoredImage)]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self._discard(stored)
            if isinstance(failure, ImageGenError):
                raise failure
            raise ImageGenError(ErrorCode.STORAGE_ERROR, "could not store the generated image") from failure
        return stored

    async def _discard(self, stored: list[StoredImage]) -> None:
        """Best-effort removal so a failed call leaves nothing half-written (the lifecycle rule catches the rest)."""
        for item in stored:
            try:
                await asyncio.shield(self.deps.store.delete(item.id))
            except Exception:
                log.warning("could not delete orphaned output %s; retention will remove it", item.id, exc_info=True)
