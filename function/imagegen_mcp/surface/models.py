"""The catalog tools: list_models and the imagegen://models resource."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..errors import ImageGenError
from .framing import ErrorBody, Surface


class ModelEntry(BaseModel):
    id: str
    title: str
    description: str
    provider: str | None = Field(description="Provider serving this model in this deployment (null: unavailable).")
    providers: list[str]
    available: bool
    unavailable_reason: str | None = None
    replaced_by: str | None = None
    capabilities: dict[str, Any]
    origin: str = Field("curated", description="curated (catalog.json) or discovered (a provider's live model list).")
    source: str | None = Field(None, description="Documentation (curated) or listing (discovered) the entry rests on.")
    checked: str | None = Field(None, description="Date a curated entry was last checked against its source.")
    pricing: dict[str, Any] | None = Field(None, description="USD prices as documented or listed; null fields unknown.")
    price_per_image_usd: float | None = Field(None, description="Catalog price of one image (null: unknown).")


class ModelList(BaseModel):
    """Result of list_models; an error result carries only `error` (and an empty `models`)."""

    default_model: str | None = None
    models: list[ModelEntry] = Field(default_factory=list)
    error: ErrorBody | None = None


def register(surface: Surface) -> None:
    """Register list_models and the models resource."""
    tools = surface.tools

    @surface.tool(
        name="list_models",
        error_fields={"models": []},
        title="List models",
        description=(
            "Every model in the catalog: provider, capabilities, and whether it is available here (and why not)."
        ),
        annotations=ToolAnnotations(
            title="List models",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def list_models() -> Annotated[CallToolResult, ModelList]:
        try:
            listing = await tools.list_models()
        except ImageGenError as err:
            return surface.specs["list_models"].error_result(err)
        names = ", ".join(f"{m['id']}{'' if m['available'] else ' (unavailable)'}" for m in listing["models"])
        return CallToolResult(
            content=[TextContent(type="text", text=f"default: {listing['default_model']}; models: {names}")],
            structured_content=listing,
        )

    @surface.resource(
        "imagegen://models",
        name="models",
        title="Model catalog",
        description="The model catalog with capabilities and availability, as JSON.",
        mime_type="application/json",
    )
    async def models_resource() -> str:
        return json.dumps(await tools.list_models(), indent=2)
