"""Live model discovery: image models a provider's own listing names (OpenRouter's Models API, the Gemini API's
models.list) that the curated catalog lacks, as conservative `discovered` specs, cached and refreshed in the
background; a failed refresh keeps the last good list."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from ..catalog import DISCOVERED, Capabilities, ModelSpec, Offer, Pricing
from ..deadline import Deadline
from ..errors import ImageGenError
from ..secrets import base as secret_names
from . import upstream_http
from .base import ProviderContext

log = logging.getLogger(__name__)

# Formats are converted after the upstream answers (images.imaging), so every model can offer all three.
_OUTPUT_FORMATS = ("png", "jpeg", "webp")
# OpenRouter `pricing` keys (USD strings) -> our price fields.
_OPENROUTER_PRICES = {
    "prompt": "per_input_token",
    "completion": "per_output_token",
    "request": "per_request",
    "image": "per_input_image",
    "image_output": "per_output_image_token",
}
# One listing call never holds a request up for long: the first load waits at most this.
_FETCH_TIMEOUT_SECONDS = 10.0
# After a failed refresh, try again this soon (not on every call, not only after a full interval).
_RETRY_AFTER_FAILURE_SECONDS = 60.0


def _conservative(*, edit: bool, seed: bool) -> Capabilities:
    """What a listing lets us promise: generation; image input only if listed; one image; no option we cannot map."""
    return Capabilities(
        generate=True,
        edit=edit,
        mask=False,
        max_n=1,
        max_input_images=1 if edit else 0,
        aspect_ratios=(),
        image_sizes=(),
        output_formats=_OUTPUT_FORMATS,
        transparent_background=False,
        qualities=(),
        negative_prompt=False,
        seed=seed,
    )


def _price(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None  # OpenRouter uses -1 for "varies"


def openrouter_spec(raw: Any, listing_url: str) -> ModelSpec | None:
    """A discovered spec for one entry of OpenRouter's Models API, or None if it does not output images."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return None
    raw_arch = raw.get("architecture")
    arch: dict[str, Any] = raw_arch if isinstance(raw_arch, dict) else {}
    outputs = [m for m in arch.get("output_modalities") or [] if isinstance(m, str)]
    inputs = [m for m in arch.get("input_modalities") or [] if isinstance(m, str)]
    if "image" not in outputs:
        return None
    params = [p for p in raw.get("supported_parameters") or [] if isinstance(p, str)]
    raw_pricing = raw.get("pricing")
    listed: dict[str, Any] = raw_pricing if isinstance(raw_pricing, dict) else {}
    prices = {ours: p for theirs, ours in _OPENROUTER_PRICES.items() if (p := _price(listed.get(theirs))) is not None}
    model_id: str = raw["id"]
    raw_name, raw_about = raw.get("name"), raw.get("description")
    name = raw_name if isinstance(raw_name, str) else model_id
    about = raw_about if isinstance(raw_about, str) else ""
    return ModelSpec(
        id=raw["id"],
        title=name,
        description=upstream_http.trim(about or name, limit=400),
        offers=(Offer("openrouter", raw["id"]),),
        capabilities=_conservative(edit="image" in inputs, seed="seed" in params),
        extra={"openrouter_modalities": ["image", "text"] if "text" in outputs else ["image"]},
        origin=DISCOVERED,
        source=listing_url,
        pricing=Pricing(source=listing_url, prices=prices),
    )


class ListingSource(Protocol):
    """One provider's model listing."""

    provider: str

    async def fetch(self) -> list[ModelSpec] | None:
        """The image models listed now; None when the provider is not configured (no key: nothing to list)."""
        ...


class _KeyedListing:
    """A listing read with the provider's API key from the secret source."""

    provider: str

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx


class OpenRouterListing(_KeyedListing):
    """`GET {base}/models?output_modalities=image` with the OpenRouter key from the secret source."""

    provider = "openrouter"

    async def fetch(self) -> list[ModelSpec] | None:
        from .openrouter import VENDOR, parse_failure

        key = await self._ctx.secrets.get(secret_names.OPENROUTER)
        if not key:
            return None
        url = f"{self._ctx.settings.openrouter_base_url.rstrip('/')}/models"
        answer = await upstream_http.request_json(
            self._ctx,
            VENDOR,
            "GET",
            url,
            deadline=Deadline(_FETCH_TIMEOUT_SECONDS),
            secret=key,
            parse_failure=parse_failure,
            params={"output_modalities": "image"},
        )
        data = answer.get("data")
        listing = f"{url}?output_modalities=image"
        found = [openrouter_spec(raw, listing) for raw in data] if isinstance(data, list) else []
        return [spec for spec in found if spec is not None]


GEMINI_LISTING = "https://ai.google.dev/api/models#method:-models.list"


def gemini_spec(model: Any, listing_url: str = GEMINI_LISTING) -> ModelSpec | None:
    """A discovered spec for one `Model` of the Gemini API's models.list, or None if it is not an image model.

    models.list states neither modalities nor prices: an image model is one whose id has an `image` part and
    that supports generateContent; it is offered for text-to-image only.
    """
    name = getattr(model, "name", None)
    if not isinstance(name, str) or not name:
        return None
    base = name.removeprefix("models/")
    if "image" not in base.split("-") or "generateContent" not in (getattr(model, "supported_actions", None) or []):
        return None
    title = getattr(model, "display_name", None) or base
    about = getattr(model, "description", None) or title
    return ModelSpec(
        id=f"google/{base}",
        title=title,
        description=upstream_http.trim(about, limit=400),
        offers=(Offer("gemini", base),),
        capabilities=_conservative(edit=False, seed=False),
        origin=DISCOVERED,
        source=listing_url,
    )


class GeminiListing(_KeyedListing):
    """The Gemini Developer API's models.list through google-genai, with the Gemini key from the secret source."""

    provider = "gemini"

    async def fetch(self) -> list[ModelSpec] | None:
        from .vertex import _close_client, _make_client

        key = await self._ctx.secrets.get(secret_names.GEMINI)
        if not key:
            return None
        client = await asyncio.to_thread(
            _make_client, vertexai=False, api_key=key, base_url=self._ctx.settings.gemini_base_url
        )
        try:

            async def collect() -> list[Any]:
                pager = await client.aio.models.list(config={"page_size": 100})
                return [model async for model in pager]

            models = await asyncio.wait_for(collect(), _FETCH_TIMEOUT_SECONDS)
        finally:
            await _close_client(client)
        return [spec for spec in map(gemini_spec, models) if spec is not None]


class ModelDiscovery:
    """The discovered models of this process: last good list per source, refreshed when older than the interval."""

    def __init__(
        self,
        sources: Iterable[ListingSource],
        *,
        known: Iterable[str],
        enabled: Iterable[str] = (),
        refresh_seconds: float = 3600.0,
    ) -> None:
        self._sources = list(sources)
        self._known = set(known)
        self._enabled = set(enabled)
        self._refresh_seconds = refresh_seconds
        self._lists: dict[str, list[ModelSpec]] = {}
        self._next_refresh: float | None = None  # monotonic time; None: never loaded
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def _visible(self, spec: ModelSpec) -> bool:
        return spec.id not in self._known and (not self._enabled or spec.id in self._enabled)

    def models(self) -> list[ModelSpec]:
        """The current list (no I/O): every source's last good listing, minus curated and non-enabled ids."""
        seen: dict[str, ModelSpec] = {}
        for source in self._sources:
            for spec in self._lists.get(source.provider, []):
                if self._visible(spec) and spec.id not in seen:
                    seen[spec.id] = spec
        return list(seen.values())

    async def current(self) -> list[ModelSpec]:
        """The list for a request: the first call waits for one load; later ones refresh in the background."""
        if self._next_refresh is None:
            async with self._lock:
                if self._next_refresh is None:
                    await self.refresh()
        elif time.monotonic() >= self._next_refresh and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self.refresh())
        return self.models()

    async def find(self, model_id: str) -> ModelSpec | None:
        return next((spec for spec in await self.current() if spec.id == model_id), None)

    async def refresh(self) -> None:
        """Fetch every source once; a source that fails keeps its last good list (and is retried sooner)."""
        failed = False
        for source in self._sources:
            try:
                fetched = await source.fetch()
            except Exception as exc:  # a listing must never break a call: log, keep what we had
                failed = True
                reason = exc.code.value if isinstance(exc, ImageGenError) else type(exc).__name__
                log.warning(
                    "model discovery refresh failed; keeping the last good list",
                    extra={"fields": {"provider": source.provider, "reason": reason}},
                )
                continue
            self._lists[source.provider] = fetched or []
        wait = min(self._refresh_seconds, _RETRY_AFTER_FAILURE_SECONDS) if failed else self._refresh_seconds
        self._next_refresh = time.monotonic() + wait

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def build_discovery(ctx: ProviderContext, providers: Iterable[str], known: Iterable[str]) -> ModelDiscovery | None:
    """The discovery this deployment asks for (IMAGEGEN_DISCOVERY), over the enabled providers that list models."""
    settings = ctx.settings
    if not settings.discovery:
        return None
    enabled = set(providers)
    sources: list[ListingSource] = []
    if "openrouter" in enabled:
        sources.append(OpenRouterListing(ctx))
    if "gemini" in enabled:
        sources.append(GeminiListing(ctx))
    if not sources:
        return None
    return ModelDiscovery(
        sources, known=known, enabled=settings.enabled_models, refresh_seconds=settings.discovery_refresh_seconds
    )
