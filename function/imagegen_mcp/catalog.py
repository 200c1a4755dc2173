"""The model catalog: public model ids, who serves them, and what each can do (loaded from catalog.json)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .errors import ErrorCode, ImageGenError


@dataclass(frozen=True)
class Capabilities:
    """What a model can honour; checked before any upstream call."""

    generate: bool
    edit: bool
    mask: bool
    max_n: int
    max_input_images: int
    aspect_ratios: tuple[str, ...]
    image_sizes: tuple[str, ...]
    output_formats: tuple[str, ...]
    transparent_background: bool
    qualities: tuple[str, ...]
    negative_prompt: bool
    seed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "generate": self.generate,
            "edit": self.edit,
            "mask": self.mask,
            "max_n": self.max_n,
            "max_input_images": self.max_input_images,
            "aspect_ratios": list(self.aspect_ratios),
            "image_sizes": list(self.image_sizes),
            "output_formats": list(self.output_formats),
            "transparent_background": self.transparent_background,
            "qualities": list(self.qualities),
            "negative_prompt": self.negative_prompt,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Offer:
    """One provider that can serve a model, under its own upstream id."""

    provider: str
    upstream_id: str


# Price fields a catalog entry or a discovered model may state, all in USD; a field left out is unknown.
PRICE_FIELDS = (
    "per_image",
    "per_request",
    "per_input_token",
    "per_output_token",
    "per_input_image",
    "per_input_image_token",
    "per_output_image_token",
)

CURATED = "curated"
DISCOVERED = "discovered"


@dataclass(frozen=True)
class Pricing:
    """Prices as documented (curated) or as a provider's model listing states them (discovered); None = unknown."""

    source: str | None
    prices: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"currency": "USD", "source": self.source, **{name: self.prices.get(name) for name in PRICE_FIELDS}}


@dataclass(frozen=True)
class ModelSpec:
    """A catalog entry (curated, from catalog.json) or a model a provider listing named (discovered)."""

    id: str
    title: str
    description: str
    offers: tuple[Offer, ...]
    capabilities: Capabilities
    replaced_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    origin: str = CURATED
    source: str | None = None
    checked: str | None = None
    notes: str | None = None
    pricing: Pricing | None = None

    def offer_for(self, provider: str) -> Offer | None:
        return next((offer for offer in self.offers if offer.provider == provider), None)


@dataclass(frozen=True)
class GenerationOptions:
    """Caller options shared by generate and edit, as validated against a model."""

    n: int = 1
    aspect_ratio: str | None = None
    image_size: str | None = None
    quality: str | None = None
    background: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    output_format: str = "png"


def _model_from_json(raw: dict[str, Any], defaults: dict[str, Any]) -> ModelSpec:
    caps_raw = {**defaults, **raw["capabilities"]}
    caps = Capabilities(
        generate=bool(caps_raw["generate"]),
        edit=bool(caps_raw["edit"]),
        mask=bool(caps_raw["mask"]),
        max_n=int(caps_raw["max_n"]),
        max_input_images=int(caps_raw["max_input_images"]),
        aspect_ratios=tuple(caps_raw["aspect_ratios"]),
        image_sizes=tuple(caps_raw["image_sizes"]),
        output_formats=tuple(caps_raw["output_formats"]),
        transparent_background=bool(caps_raw["transparent_background"]),
        qualities=tuple(caps_raw["qualities"]),
        negative_prompt=bool(caps_raw["negative_prompt"]),
        seed=bool(caps_raw["seed"]),
    )
    known = {
        "id",
        "title",
        "description",
        "offers",
        "capabilities",
        "replaced_by",
        "source",
        "checked",
        "notes",
        "pricing",
    }
    return ModelSpec(
        id=raw["id"],
        title=raw["title"],
        description=raw["description"],
        offers=tuple(Offer(o["provider"], o["upstream_id"]) for o in raw["offers"]),
        capabilities=caps,
        replaced_by=raw.get("replaced_by"),
        extra={k: v for k, v in raw.items() if k not in known},
        source=raw.get("source"),
        checked=raw.get("checked"),
        notes=raw.get("notes"),
        pricing=_pricing_from_json(raw.get("pricing")),
    )


def _pricing_from_json(raw: dict[str, Any] | None) -> Pricing | None:
    if raw is None:
        return None
    unknown = set(raw) - {"source", *PRICE_FIELDS}
    if unknown:
        raise ValueError(f"unknown pricing fields {sorted(unknown)}")
    prices = {k: float(v) for k, v in raw.items() if k in PRICE_FIELDS and v is not None}
    return Pricing(source=raw.get("source"), prices=prices)


class Catalog:
    """Lookup over the model specs, in catalog order."""

    def __init__(self, models: list[ModelSpec], default_model: str) -> None:
        self._models = {m.id: m for m in models}
        self.default_model = default_model

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def ids(self) -> list[str]:
        return list(self._models)

    def find(self, model_id: str) -> ModelSpec | None:
        return self._models.get(model_id)

    def get(self, model_id: str) -> ModelSpec:
        spec = self._models.get(model_id)
        if spec is None:
            raise ImageGenError(
                ErrorCode.NOT_FOUND,
                f"unknown model {model_id!r}; call list_models for the models of this deployment",
                details={"known_models": self.ids()},
            )
        return spec

    def restricted_to(self, ids: list[str], *, allow_unknown: bool = False) -> Catalog:
        """A catalog holding only `ids` (deployment allowlist).

        Unknown ids are a configuration error unless `allow_unknown` (live discovery may supply them later).
        """
        if not ids:
            return self
        unknown = [i for i in ids if i not in self._models]
        if unknown and not allow_unknown:
            raise ValueError(f"IMAGEGEN_ENABLED_MODELS names unknown models: {unknown}")
        return Catalog([self._models[i] for i in ids if i in self._models], self.default_model)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def provenance_problems(specs: Iterable[ModelSpec]) -> list[str]:
    """What is missing from curated entries' provenance: a `source` to check against and the date it was `checked`."""
    problems = []
    for spec in specs:
        if spec.origin != CURATED:
            continue
        if not spec.source:
            problems.append(f"{spec.id}: no source")
        if not spec.checked or not _DATE.match(spec.checked):
            problems.append(f"{spec.id}: no checked date (YYYY-MM-DD)")
        if spec.pricing is not None and spec.pricing.prices and not spec.pricing.source:
            problems.append(f"{spec.id}: prices without a source")
    return problems


@cache
def load_catalog() -> Catalog:
    """The catalog shipped with the package."""
    raw = json.loads(resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8"))
    models = [_model_from_json(m, raw["defaults"]) for m in raw["models"]]
    return Catalog(models, raw["default_model"])


def check_options(spec: ModelSpec, options: GenerationOptions, *, inputs: int = 0, mask: bool = False) -> None:
    """Refuse, before any upstream call, what `spec` cannot honour, saying what it does support."""
    caps = spec.capabilities
    editing = inputs > 0

    def refuse(what: str, supported: object) -> ImageGenError:
        return ImageGenError(
            ErrorCode.UNSUPPORTED,
            f"{spec.id} does not support {what}; supported: {supported}",
            details={"model": spec.id, "capabilities": caps.as_dict()},
        )

    if editing and not caps.edit:
        raise refuse("image editing", "generation only")
    if not editing and not caps.generate:
        raise refuse("text-to-image generation", "editing only (pass images to edit_image)")
    if mask and not caps.mask:
        raise refuse("masks", "edits without a mask")
    if inputs > caps.max_input_images:
        raise refuse(f"{inputs} input images", f"at most {caps.max_input_images}")
    if options.n > caps.max_n:
        raise refuse(f"n={options.n}", f"n from 1 to {caps.max_n}")
    if options.aspect_ratio is not None and options.aspect_ratio not in caps.aspect_ratios:
        raise refuse(f"aspect_ratio {options.aspect_ratio!r}", list(caps.aspect_ratios))
    if options.image_size is not None and options.image_size not in caps.image_sizes:
        raise refuse(f"image_size {options.image_size!r}", list(caps.image_sizes) or "no size selection")
    if options.output_format not in caps.output_formats:
        raise refuse(f"output_format {options.output_format!r}", list(caps.output_formats))
    if options.quality is not None and options.quality not in caps.qualities:
        raise refuse(f"quality {options.quality!r}", list(caps.qualities) or "no quality selection")
    if options.background == "transparent":
        if not caps.transparent_background:
            raise refuse("a transparent background", "opaque backgrounds")
        if options.output_format == "jpeg":
            raise ImageGenError(
                ErrorCode.INVALID_ARGUMENT, "a transparent background needs output_format png or webp, not jpeg"
            )
    if options.negative_prompt and not caps.negative_prompt:
        raise refuse("negative_prompt", "describe what to avoid in the prompt itself")
    if options.seed is not None and not caps.seed:
        raise refuse("seed", "no seed (outputs are not reproducible)")
