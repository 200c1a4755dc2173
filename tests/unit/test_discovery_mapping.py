"""How listing entries become discovered specs: conservative capabilities, listed prices, nothing invented."""

from __future__ import annotations

from types import SimpleNamespace

from imagegen_mcp.providers.discovery import ModelDiscovery, gemini_spec, openrouter_spec
from tests.fakes.openrouter_server import listed_model

LISTING = "http://127.0.0.1:1/api/v1/models?output_modalities=image"


def test_text_only_and_malformed_entries_are_not_image_models() -> None:
    assert openrouter_spec(listed_model("openai/gpt-4o", outputs=("text",)), LISTING) is None
    assert openrouter_spec({"id": "x/y"}, LISTING) is None
    assert openrouter_spec({"architecture": {"output_modalities": ["image"]}}, LISTING) is None
    assert openrouter_spec("not an object", LISTING) is None


def test_capabilities_follow_only_what_the_listing_states() -> None:
    bare = openrouter_spec(listed_model("acme/t2i"), LISTING)
    assert bare is not None
    caps = bare.capabilities
    assert (caps.generate, caps.edit, caps.max_input_images, caps.max_n, caps.seed) == (True, False, 0, 1, False)
    assert (caps.aspect_ratios, caps.image_sizes, caps.qualities) == ((), (), ())
    assert bare.extra["openrouter_modalities"] == ["image"]
    chatty = openrouter_spec(
        listed_model("acme/chat-img", inputs=("image", "text"), outputs=("image", "text"), parameters=("seed",)),
        LISTING,
    )
    assert chatty is not None
    assert (chatty.capabilities.edit, chatty.capabilities.seed) == (True, True)
    assert chatty.extra["openrouter_modalities"] == ["image", "text"]


def test_prices_are_taken_as_listed_and_unknown_stays_unknown() -> None:
    spec = openrouter_spec(
        listed_model("acme/p", pricing={"prompt": "0.0000025", "completion": "x", "image": "-1", "request": "0.01"}),
        LISTING,
    )
    assert spec is not None and spec.pricing is not None
    prices = spec.pricing.as_dict()
    assert (prices["per_input_token"], prices["per_request"]) == (2.5e-6, 0.01)
    assert prices["per_output_token"] is None and prices["per_input_image"] is None and prices["per_image"] is None
    assert prices["source"] == LISTING


def test_gemini_image_models_are_recognised_by_id_and_method() -> None:
    image = SimpleNamespace(
        name="models/gemini-4-image", display_name="G4 Image", supported_actions=["generateContent"]
    )
    assert gemini_spec(image) is not None and gemini_spec(image).id == "google/gemini-4-image"  # type: ignore[union-attr]
    text = SimpleNamespace(name="models/gemini-4-flash", display_name="G4", supported_actions=["generateContent"])
    embed = SimpleNamespace(name="models/gemini-image-embed", display_name="E", supported_actions=["embedContent"])
    assert gemini_spec(text) is None and gemini_spec(embed) is None


def test_curated_and_non_enabled_ids_are_hidden() -> None:
    listing = [openrouter_spec(listed_model(i), LISTING) for i in ("a/known", "b/new", "c/new")]

    class Source:
        provider = "openrouter"

        async def fetch(self):  # type: ignore[no-untyped-def]
            return listing

    import asyncio

    discovery = ModelDiscovery([Source()], known=["a/known"], enabled=["b/new", "a/known"])
    assert [m.id for m in asyncio.run(discovery.current())] == ["b/new"]


def test_capability_matrix_marks_discovered_entries_and_links_curated_dates() -> None:
    from imagegen_mcp.catalog import load_catalog
    from imagegen_mcp.doc_tables import capability_matrix

    found = openrouter_spec(listed_model("acme/new-image"), LISTING)
    assert found is not None
    curated = load_catalog().get("openai/gpt-image-2.5-flare")
    table = capability_matrix([curated, found]).splitlines()
    assert table[2].startswith(f"| `openai/gpt-image-2.5-flare` | curated | [2026-12-01]({curated.source}) |")
    assert table[3].startswith("| `acme/new-image` | discovered | – | openrouter |")
