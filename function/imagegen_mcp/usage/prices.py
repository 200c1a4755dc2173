"""Estimated cost of a generation from the catalog's per-model `pricing` data (unknown price: None, never a guess)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..catalog import ModelSpec

MICROS_PER_USD = 1_000_000


def pricing_of(spec: ModelSpec) -> Mapping[str, float]:
    """The model's documented prices in USD by field name (`per_image`, `per_request`, ...); empty when unknown."""
    # The catalog parses `pricing` into spec.pricing (a Pricing with .prices); an older catalog module keeps the
    # raw JSON object in spec.extra. Both are the same data from catalog.json.
    parsed = getattr(spec, "pricing", None)
    if parsed is not None:
        return dict(parsed.prices)
    raw: Any = spec.extra.get("pricing")
    if not isinstance(raw, dict):
        return {}
    return {k: float(v) for k, v in raw.items() if k != "source" and isinstance(v, int | float)}


def price_per_image(spec: ModelSpec) -> float | None:
    """What one image costs when the price is a flat per-image one (what list_models shows); else None."""
    return pricing_of(spec).get("per_image")


def estimate_cost(spec: ModelSpec, *, images: int, inputs: int = 0) -> float | None:
    """USD for `images` outputs (and `inputs` input images) of one call; None when the catalog states no such price.

    Only flat prices are used: a model priced per token alone cannot be estimated before the upstream answers.
    """
    prices = pricing_of(spec)
    per_image, per_request = prices.get("per_image"), prices.get("per_request")
    if per_image is None and per_request is None:
        return None
    if images == 0:
        return 0.0  # nothing produced: the upstream bills nothing we can estimate
    cost = images * (per_image or 0.0) + (per_request or 0.0) + inputs * prices.get("per_input_image", 0.0)
    return round(cost, 6)


def to_micros(usd: float | None) -> int:
    return 0 if usd is None else round(usd * MICROS_PER_USD)


def from_micros(micros: int) -> float:
    return round(micros / MICROS_PER_USD, 6)
