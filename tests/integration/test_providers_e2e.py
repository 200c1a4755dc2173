"""Each upstream end to end: official MCP client → real HTTP → server → provider adapter → local wire fake,
with the provider keys read through the Secret Manager path (real client, REST transport, local fake)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx2
import pytest
from google.oauth2.credentials import Credentials
from mcp import Client
from PIL import Image

from imagegen_mcp.app import create_app
from imagegen_mcp.config import Settings
from imagegen_mcp.deps import build_deps
from imagegen_mcp.secrets.secret_manager import SecretManagerSource
from tests.fakes.gemini_server import start_fake_gemini
from tests.fakes.openai_server import start_fake_openai
from tests.fakes.openrouter_server import start_fake_openrouter
from tests.fakes.replicate_server import start_fake_replicate
from tests.fakes.secret_manager_server import start_fake_secret_manager
from tests.integration.provider_support import routed_fetcher
from tests.support.inthread import serve_in_thread

pytestmark = pytest.mark.anyio

KEYS = {
    "imagegen-openai-api-key": "sk-e2e-openai-0123456789",
    "imagegen-openrouter-api-key": "sk-or-e2e-0123456789",
    "imagegen-replicate-api-token": "r8_e2e0123456789",
    "imagegen-gemini-api-key": "test-gemini-key",
}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        sm_url, sm = stack.enter_context(start_fake_secret_manager(KEYS))
        openai_url, openai = stack.enter_context(start_fake_openai(key=KEYS["imagegen-openai-api-key"]))
        router_url, router = stack.enter_context(start_fake_openrouter(key=KEYS["imagegen-openrouter-api-key"]))
        rep_url, rep = stack.enter_context(start_fake_replicate(key=KEYS["imagegen-replicate-api-token"]))
        gem_url, gem = stack.enter_context(start_fake_gemini(api_keys=(KEYS["imagegen-gemini-api-key"],)))
        yield {
            "sm": (sm_url, sm),
            "openai": (openai_url, openai),
            "openrouter": (router_url, router),
            "replicate": (rep_url, rep),
            "gemini": (gem_url, gem),
        }


@pytest.fixture
def endpoint(upstreams: dict[str, Any], tmp_path, request: pytest.FixtureRequest) -> Iterator[str]:  # type: ignore[no-untyped-def]
    provider = request.param
    sm_url, _ = upstreams["sm"]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        local_dir=tmp_path / "out",
        secrets="secret-manager",
        secret_manager_endpoint=sm_url,
        secret_project="test-project",
        providers=[provider],
        rate_limit_per_minute=0,
        openai_base_url=upstreams["openai"][0],
        openrouter_base_url=upstreams["openrouter"][0],
        replicate_base_url=upstreams["replicate"][0],
        gemini_base_url=upstreams["gemini"][0],
        vertex_enabled=False,
        upstream_timeout_seconds=10,
    )
    secrets = SecretManagerSource(settings, credentials=Credentials(token="t"), environ={})
    fake = upstreams[provider][1]
    fetcher, _ = routed_fetcher(fake) if hasattr(fake, "port") else (None, None)
    deps = build_deps(settings, secrets=secrets, fetcher=fetcher)
    with serve_in_thread(create_app(settings, deps)) as base_url:
        yield base_url


CASES = [
    ("openai", "openai/gpt-image-2.6-sunburst"),
    ("openrouter", "openai/gpt-5-image"),
    ("openrouter", "black-forest-labs/flux.2-pro"),
    ("replicate", "black-forest-labs/flux.2-flex"),
    ("gemini", "google/gemini-3-pro-image-preview"),
]


@pytest.mark.parametrize(("endpoint", "model"), CASES, indirect=["endpoint"], ids=[f"{p}-{m}" for p, m in CASES])
async def test_generate_through_each_provider(endpoint: str, model: str, upstreams: dict[str, Any]) -> None:
    async with Client(f"{endpoint}/mcp") as client:
        listing = (await client.call_tool("list_models", {})).structured_content
        live = {m["id"]: m["provider"] for m in listing["models"] if m["available"]}
        assert model in live
        result = await client.call_tool("generate_image", {"prompt": "a paper crane", "model": model, "n": 2})
    assert not result.is_error, result.structured_content
    structured = result.structured_content
    assert structured["model"] == model and structured["provider"] == live[model]
    assert len(structured["images"]) == 2
    for item in structured["images"]:
        response = httpx2.get(item["url"], timeout=30)
        assert response.status_code == 200
        with Image.open(io.BytesIO(response.content)) as img:
            assert img.format == "PNG" and img.size == (item["width"], item["height"])
    provider = live[model]
    fake = upstreams[provider][1]
    secret_id = f"imagegen-{provider}-api-{'token' if provider == 'replicate' else 'key'}"
    key = KEYS[secret_id]
    seen = [r for r in fake.requests if getattr(r, "path", "").find("/files/") < 0]
    assert seen, "the upstream fake saw no request"
    auth_values = {
        {k.lower(): v for k, v in r.headers.items()}.get("authorization")
        or {k.lower(): v for k, v in r.headers.items()}.get("x-goog-api-key", "")
        for r in seen
    }
    assert any(key in value for value in auth_values)
    assert upstreams["sm"][1].access_count(secret_id) > 0


@pytest.mark.parametrize("endpoint", ["openai"], indirect=True)
async def test_missing_secret_marks_models_unavailable_and_calls_misconfigured(
    endpoint: str, upstreams: dict[str, Any]
) -> None:
    _, sm = upstreams["sm"]
    sm.remove("imagegen-openrouter-api-key")
    try:
        async with Client(f"{endpoint}/mcp") as client:
            listing = (await client.call_tool("list_models", {})).structured_content
            result = await client.call_tool("generate_image", {"prompt": "x", "model": "openai/gpt-5-image"})
            healthy = await client.call_tool(
                "generate_image", {"prompt": "x", "model": "openai/gpt-image-2.6-sunburst"}
            )
    finally:
        sm.set("imagegen-openrouter-api-key", KEYS["imagegen-openrouter-api-key"])
    by_id = {m["id"]: m for m in listing["models"]}
    assert by_id["openai/gpt-5-image"]["available"] is False
    assert result.structured_content["error"]["code"] == "misconfigured"
    assert not healthy.is_error


# OpenAI's deprecations page: shut down on 2026-12-01, replacement "gpt-image-2.6-sunburst or gpt-image-2.6-flare".
RETIRED = {
    "openai/gpt-image-1.5": "openai/gpt-image-2.6-sunburst",
    "openai/chatgpt-image-latest": "openai/gpt-image-2.6-sunburst",
    "openai/gpt-image-1-mini": "openai/gpt-image-2.6-flare",
}


@pytest.mark.parametrize("endpoint", ["openai"], indirect=True)
async def test_models_shut_down_upstream_are_listed_as_replaced_and_served_by_the_replacement(
    endpoint: str, upstreams: dict[str, Any]
) -> None:
    fake = upstreams["openai"][1]
    async with Client(f"{endpoint}/mcp") as client:
        listing = (await client.call_tool("list_models", {})).structured_content
        result = await client.call_tool(
            "generate_image", {"prompt": "a paper crane", "model": "openai/gpt-image-1.5", "aspect_ratio": "16:9"}
        )
    by_id = {m["id"]: m for m in listing["models"]}
    assert {model_id: by_id[model_id].get("replaced_by") for model_id in RETIRED} == RETIRED
    assert all(by_id[model_id]["available"] for model_id in RETIRED)
    assert not result.is_error, result.structured_content
    assert result.structured_content["model"] == "openai/gpt-image-1.5"
    sent = [r.json() for r in fake.requests if r.path == "/v1/images/generations"][-1]
    assert sent["model"] == "gpt-image-2.6-sunburst"
    assert sent["size"] == "1360x768"
