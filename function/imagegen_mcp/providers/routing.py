"""Which provider serves a model in this deployment: catalog offers filtered by availability and preference."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..catalog import Catalog, ModelSpec, Offer
from ..errors import ErrorCode, ImageGenError
from .base import Availability, ImageProvider

if TYPE_CHECKING:
    from .discovery import ModelDiscovery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    model: ModelSpec
    offer: Offer
    provider: ImageProvider


@dataclass(frozen=True)
class ModelStatus:
    """A model as `list_models` reports it."""

    model: ModelSpec
    live_provider: str | None
    reason: str | None
    offers: dict[str, Availability]


class Router:
    """Picks, per model, the first provider in the deployment's preference order that is live.

    Models are the curated catalog's, then those live discovery found (when it is on).
    """

    def __init__(
        self,
        catalog: Catalog,
        providers: dict[str, ImageProvider],
        preference: list[str],
        discovery: ModelDiscovery | None = None,
    ) -> None:
        self.catalog = catalog
        self._providers = providers
        self._preference = preference
        self.discovery = discovery

    async def models(self) -> list[ModelSpec]:
        """Every model of this deployment: curated first, then discovered."""
        discovered = await self.discovery.current() if self.discovery is not None else []
        return [*self.catalog, *discovered]

    async def model(self, model_id: str) -> ModelSpec:
        """The spec of `model_id`, curated or discovered; not_found (naming the known ids) otherwise."""
        spec = self.catalog.find(model_id)
        if spec is None and self.discovery is not None:
            spec = await self.discovery.find(model_id)
        return spec if spec is not None else self.catalog.get(model_id)

    async def aclose(self) -> None:
        if self.discovery is not None:
            await self.discovery.aclose()

    def _ordered_offers(self, spec: ModelSpec) -> list[Offer]:
        rank = {name: i for i, name in enumerate(self._preference)}
        offers = [o for o in spec.offers if o.provider in self._providers and o.provider in rank]
        return sorted(offers, key=lambda o: rank[o.provider])

    async def _probe(self, name: str) -> Availability:
        """One provider's availability; a failed check means unavailable (errors.py policy 3)."""
        try:
            return await self._providers[name].availability()
        except ImageGenError as err:
            return Availability(False, err.message)
        except Exception:
            log.warning("%s availability check failed", name, exc_info=True)
            return Availability(False, f"{name} availability check failed")

    async def _availability(self) -> dict[str, Availability]:
        names = list(self._providers)
        results = await asyncio.gather(*(self._probe(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def status(self) -> list[ModelStatus]:
        avail = await self._availability()
        statuses = []
        for spec in await self.models():
            offers = self._ordered_offers(spec)
            per_offer = {o.provider: avail[o.provider] for o in offers}
            live = next((o.provider for o in offers if avail[o.provider].available), None)
            reason = None
            if live is None:
                reasons = [f"{p}: {a.reason}" for p, a in per_offer.items() if a.reason]
                if not offers:
                    reason = "no provider for this model is enabled in this deployment (IMAGEGEN_PROVIDERS)"
                else:
                    reason = "; ".join(reasons) or "no provider available"
            statuses.append(ModelStatus(spec, live, reason, per_offer))
        return statuses

    async def route(self, model_id: str) -> Route:
        spec = await self.model(model_id)
        offers = self._ordered_offers(spec)
        reasons: list[str] = []
        for offer in offers:
            availability = await self._probe(offer.provider)
            if availability.available:
                return Route(spec, offer, self._providers[offer.provider])
            reasons.append(f"{offer.provider}: {availability.reason}")
        raise ImageGenError(
            ErrorCode.MISCONFIGURED,
            f"model {model_id!r} is not available in this deployment ("
            + ("; ".join(reasons) or "none of its providers is enabled")
            + ")",
            details={"model": model_id},
        )
