"""Live discovery end to end: official MCP client → server → discovery (OpenRouter's Models API, the Gemini API's
models.list through google-genai) → the adapters, all against wire fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from mcp import Client

from imagegen_mcp.app import create_app
from imagegen_mcp.catalog import load_catalog
from imagegen_mcp.config import Settings
from imagegen_mcp.deps import build_deps
from imagegen_mcp.providers.discovery import ModelDiscovery, OpenRouterListing
from imagegen_mcp.secrets.base import EnvSecretSource
from imagegen_mcp.secrets.secret_manager import SecretManagerSource
from tests.fakes.gemini_server import listed_model as gemini_model
from tests.fakes.gemini_server import start_fake_gemini
from tests.fakes.http_fake import error_reply
from tests.fakes.openrouter_server import DEFAULT_KEY, FakeOpenRouter, listed_model, start_fake_openrouter
from tests.fakes.secret_manager_server import start_fake_secret_manager
from tests.integration.provider_support import make_ctx, routed_fetcher
from tests.support.inthread import serve_in_thread

pytestmark = pytest.mark.anyio

NEW_MODEL = "acme/pixel-forge-1"
GEMINI_KEY = "test-gemini-key"


def _add_new_model(fake: FakeOpenRouter) -> None:
    fake.listed_models.append(
        listed_model(
            NEW_MODEL,
            inputs=("text", "image"),
            parameters=("seed", "max_tokens"),
            pricing={"prompt": "0.000001", "completion": "0.000004", "request": "0", "image": "-1"},
        )
    )


@pytest.fixture
def openrouter() -> Iterator[FakeOpenRouter]:
    with start_fake_openrouter() as (_, fake):
        _add_new_model(fake)
        yield fake  # type: ignore[misc]


@contextmanager
def endpoint(fake: FakeOpenRouter, tmp_path: Any, secret_source: Any = None, **settings: Any) -> Iterator[str]:
    values: dict[str, Any] = {
        "_env_file": None,
        "local_dir": tmp_path / "out",
        "providers": ["openrouter"],
        "rate_limit_per_minute": 0,
        "openrouter_base_url": f"{fake.base}/api/v1",
        "vertex_enabled": False,
        "upstream_timeout_seconds": 10,
        **settings,
    }
    config = Settings(**values)
    fetcher, _ = routed_fetcher(fake)
    secrets = secret_source or EnvSecretSource({"OPENROUTER_API_KEY": DEFAULT_KEY})
    deps = build_deps(config, secrets=secrets, fetcher=fetcher)
    with serve_in_thread(create_app(config, deps)) as base_url:
        yield f"{base_url}/mcp"


async def _models(client: Client) -> dict[str, dict[str, Any]]:
    listing = (await client.call_tool("list_models", {})).structured_content
    return {m["id"]: m for m in listing["models"]}


async def test_a_model_only_the_listing_names_is_listed_and_called_by_its_own_id(
    openrouter: FakeOpenRouter, tmp_path: Any
) -> None:
    with endpoint(openrouter, tmp_path) as url:
        async with Client(url) as client:
            models = await _models(client)
            result = await client.call_tool("generate_image", {"prompt": "a kite", "model": NEW_MODEL, "seed": 7})
            refused = await client.call_tool("generate_image", {"prompt": "a kite", "model": NEW_MODEL, "n": 2})

    found = models[NEW_MODEL]
    assert (found["origin"], found["provider"], found["available"]) == ("discovered", "openrouter", True)
    assert found["source"] == f"{openrouter.base}/api/v1/models?output_modalities=image"
    caps = found["capabilities"]
    assert (caps["max_n"], caps["edit"], caps["max_input_images"], caps["seed"], caps["mask"]) == (
        1,
        True,
        1,
        True,
        False,
    )
    assert found["pricing"]["per_input_token"] == 1e-6 and found["pricing"]["per_output_token"] == 4e-6
    assert found["pricing"]["per_input_image"] is None  # listed as -1 ("varies"): unknown, not a price
    assert "openai/gpt-4o" not in models  # text-only: not an image model
    assert models["black-forest-labs/flux.2-pro"]["origin"] == "curated"  # listed too, but the catalog knows it
    assert models["black-forest-labs/flux.2-pro"]["checked"] == "2026-12-01"

    assert not result.is_error, result.structured_content
    assert result.structured_content["model"] == NEW_MODEL
    assert refused.is_error and refused.structured_content["error"]["code"] == "unsupported"

    [listing] = [r for r in openrouter.api_requests() if r.method == "GET"]
    assert (listing.path, listing.query) == ("/api/v1/models", "output_modalities=image")
    assert listing.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    [chat] = [r.json() for r in openrouter.api_requests() if r.path == "/api/v1/chat/completions"]
    assert (chat["model"], chat["modalities"], chat["seed"]) == (NEW_MODEL, ["image"], 7)


async def test_the_listing_key_comes_from_secret_manager(openrouter: FakeOpenRouter, tmp_path: Any) -> None:
    with start_fake_secret_manager({"imagegen-openrouter-api-key": DEFAULT_KEY}) as (sm_url, sm):
        settings = {"secrets": "secret-manager", "secret_manager_endpoint": sm_url, "secret_project": "test-project"}
        source = SecretManagerSource(
            Settings(_env_file=None, **settings), credentials=Credentials(token="t"), environ={}
        )  # type: ignore[call-arg]
        with endpoint(openrouter, tmp_path, secret_source=source, **settings) as url:
            async with Client(url) as client:
                models = await _models(client)
        assert sm.access_count("imagegen-openrouter-api-key") > 0
    assert models[NEW_MODEL]["origin"] == "discovered"
    [listing] = [r for r in openrouter.api_requests() if r.method == "GET"]
    assert listing.headers["authorization"] == f"Bearer {DEFAULT_KEY}"


async def test_discovery_off_hides_discovered_models(openrouter: FakeOpenRouter, tmp_path: Any) -> None:
    with endpoint(openrouter, tmp_path, discovery=False) as url:
        async with Client(url) as client:
            models = await _models(client)
            result = await client.call_tool("generate_image", {"prompt": "a kite", "model": NEW_MODEL})
    assert NEW_MODEL not in models and "black-forest-labs/flux.2-pro" in models
    assert result.is_error and result.structured_content["error"]["code"] == "not_found"
    assert [r for r in openrouter.api_requests() if r.method == "GET"] == []


async def test_enabled_models_restricts_discovered_ones_too(openrouter: FakeOpenRouter, tmp_path: Any) -> None:
    openrouter.listed_models.append(listed_model("acme/other-image-1"))
    with endpoint(openrouter, tmp_path, enabled_models=[NEW_MODEL, "black-forest-labs/flux.2-pro"]) as url:
        async with Client(url) as client:
            models = await _models(client)
    assert set(models) == {NEW_MODEL, "black-forest-labs/flux.2-pro"}


async def test_a_failing_first_listing_breaks_nothing(openrouter: FakeOpenRouter, tmp_path: Any) -> None:
    openrouter.script(error_reply(500, "Internal Server Error", 500))
    with endpoint(openrouter, tmp_path) as url:
        async with Client(url) as client:
            models = await _models(client)
            result = await client.call_tool(
                "generate_image", {"prompt": "a kite", "model": "black-forest-labs/flux.2-pro"}
            )
    assert NEW_MODEL not in models and models["black-forest-labs/flux.2-pro"]["available"]
    assert not result.is_error, result.structured_content


async def test_a_failed_refresh_keeps_the_last_good_list(openrouter: FakeOpenRouter) -> None:
    ctx = make_ctx(openrouter, {"OPENROUTER_API_KEY": DEFAULT_KEY}, openrouter_base_url=f"{openrouter.base}/api/v1")
    discovery = ModelDiscovery([OpenRouterListing(ctx)], known=load_catalog().ids(), refresh_seconds=0.05)
    assert NEW_MODEL in {m.id for m in await discovery.current()}

    openrouter.listed_models = [m for m in openrouter.listed_models if m["id"] != NEW_MODEL]
    openrouter.script(error_reply(502, "Bad Gateway", 502))
    await asyncio.sleep(0.1)
    assert NEW_MODEL in {m.id for m in await discovery.current()}  # stale: starts a background refresh
    assert discovery._task is not None
    await discovery._task  # the refresh that failed
    assert NEW_MODEL in {m.id for m in discovery.models()}, "a failed refresh must keep the last good list"

    await asyncio.sleep(0.1)
    await discovery.current()
    assert discovery._task is not None
    await discovery._task  # this one succeeds: the model is gone upstream, so it goes here too
    assert NEW_MODEL not in {m.id for m in discovery.models()}
    assert len([r for r in openrouter.api_requests() if r.method == "GET"]) == 3
    await discovery.aclose()


async def test_gemini_models_list_fills_the_same_role(tmp_path: Any) -> None:
    with start_fake_gemini(api_keys=(GEMINI_KEY,)) as (gemini_url, gemini):
        gemini.listed_models.append(gemini_model("gemini-3.2-flash-image", "Gemini 3.2 Flash Image"))
        config = Settings(
            _env_file=None,  # type: ignore[call-arg]
            local_dir=tmp_path / "out",
            providers=["gemini"],
            rate_limit_per_minute=0,
            gemini_base_url=gemini_url,
            vertex_enabled=False,
            upstream_timeout_seconds=10,
        )
        deps = build_deps(config, secrets=EnvSecretSource({"GEMINI_API_KEY": GEMINI_KEY}))
        with serve_in_thread(create_app(config, deps)) as base_url:
            async with Client(f"{base_url}/mcp") as client:
                models = await _models(client)
                result = await client.call_tool(
                    "generate_image", {"prompt": "a kite", "model": "google/gemini-3.2-flash-image"}
                )
        assert gemini.list_calls == 1
    found = models["google/gemini-3.2-flash-image"]
    assert (found["origin"], found["provider"]) == ("discovered", "gemini")
    assert found["capabilities"]["edit"] is False and found["capabilities"]["max_n"] == 1
    assert found["pricing"] is None  # models.list states no prices
    assert "google/gemini-3-flash" not in models  # a text model
    assert models["google/gemini-3-pro-image"]["origin"] == "curated"
    assert not result.is_error, result.structured_content
    assert [r.model for r in gemini.requests] == ["gemini-3.2-flash-image"]
