"""The shipped catalog: every curated entry says where it was checked and when; replacements point at real entries."""

from __future__ import annotations

from dataclasses import replace

from imagegen_mcp.catalog import Pricing, load_catalog, provenance_problems

NEW_OPENAI = [
    "openai/gpt-image-2.5-sunburst",
    "openai/gpt-image-2.5-sunburst-2026-09-08",
    "openai/gpt-image-2.5-flare",
    "openai/gpt-image-2.5-flare-2026-09-08",
    "openai/gpt-image-2.6-sunburst",
    "openai/gpt-image-2.6-flare",
]

# OpenAI's deprecations page: shut down on 2026-12-01, "gpt-image-2.6-sunburst or gpt-image-2.6-flare" for each.
RETIRED_2026_12_01 = {
    "openai/gpt-image-1.5": "openai/gpt-image-2.6-sunburst",
    "openai/chatgpt-image-latest": "openai/gpt-image-2.6-sunburst",
    "openai/gpt-image-1-mini": "openai/gpt-image-2.6-flare",
}


def test_every_curated_entry_has_source_and_checked_date() -> None:
    assert provenance_problems(load_catalog()) == []


def test_an_entry_without_provenance_is_reported() -> None:
    spec = load_catalog().get("openai/gpt-image-2")
    bare = replace(spec, source=None, checked="December 2026", pricing=Pricing(None, {"per_image": 0.1}))
    assert provenance_problems([bare]) == [
        "openai/gpt-image-2: no source",
        "openai/gpt-image-2: no checked date (YYYY-MM-DD)",
        "openai/gpt-image-2: prices without a source",
    ]


def test_openai_models_of_the_current_reference_are_catalogued() -> None:
    catalog = load_catalog()
    for model_id in NEW_OPENAI:
        spec = catalog.get(model_id)
        [offer] = spec.offers
        assert (offer.provider, offer.upstream_id) == ("openai", model_id.removeprefix("openai/"))


def test_gpt_image_1_maps_to_the_replacement_openai_recommends() -> None:
    catalog = load_catalog()
    retired = catalog.get("openai/gpt-image-1")
    assert retired.replaced_by == "openai/gpt-image-2.5-flare"
    assert [(o.provider, o.upstream_id) for o in retired.offers] == [("openai", "gpt-image-2.5-flare")]
    assert retired.capabilities == catalog.get("openai/gpt-image-2.5-flare").capabilities


def test_models_shut_down_on_2026_12_01_are_served_by_a_named_replacement() -> None:
    catalog = load_catalog()
    for model_id, replacement_id in RETIRED_2026_12_01.items():
        retired, replacement = catalog.get(model_id), catalog.get(replacement_id)
        assert retired.replaced_by == replacement_id
        assert retired.offers == replacement.offers
        assert retired.capabilities == replacement.capabilities
        assert retired.pricing == replacement.pricing
        assert retired.title.endswith("(retired upstream)")
        assert retired.checked == "2026-12-01"
        assert retired.notes and replacement_id.removeprefix("openai/") in retired.notes


def test_replacements_and_openai_sizes_are_consistent() -> None:
    catalog = load_catalog()
    for spec in catalog:
        if spec.replaced_by:
            assert catalog.find(spec.replaced_by) is not None, spec.id
        if spec.offer_for("openai") is not None:
            # The adapter maps every OpenAI model to a flexible size: it needs a tier for every size named.
            assert set(spec.capabilities.image_sizes) <= {"1K", "2K", "4K"}, spec.id
            assert spec.capabilities.image_sizes, spec.id


def test_documented_prices_keep_their_source() -> None:
    spec = load_catalog().get("openai/gpt-image-2.6-sunburst")
    assert spec.pricing is not None
    assert spec.pricing.as_dict()["per_output_image_token"] == 3.0e-5
    assert spec.pricing.as_dict()["per_image"] is None  # not stated: unknown, not a guess
    assert spec.pricing.source and spec.pricing.source.startswith("https://developers.openai.com/")
