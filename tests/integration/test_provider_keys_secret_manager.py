"""Third-party adapters reading their keys through the Secret Manager source (fake Secret Manager REST + API fakes)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from imagegen_mcp.config import Settings
from imagegen_mcp.providers.base import ImageProvider, ProviderContext
from imagegen_mcp.providers.http_clients import HttpClients
from imagegen_mcp.providers.openai_images import OpenAIImagesProvider
from imagegen_mcp.providers.openrouter import OpenRouterProvider
from imagegen_mcp.providers.replicate import ReplicateProvider
from imagegen_mcp.secrets.secret_manager import SecretManagerSource
from tests.fakes import openai_server, openrouter_server, replicate_server
from tests.fakes.secret_manager_server import start_fake_secret_manager
from tests.integration.provider_support import assert_secret_absent, request_for, routed_fetcher

# (provider class, fake starter, key of the fake, secret id, base-url setting, model, provider name)
CASES: list[tuple[type, Callable[..., Any], str, str, str, str, str]] = [
    (
        OpenAIImagesProvider,
        openai_server.start_fake_openai,
        openai_server.DEFAULT_KEY,
        "imagegen-openai-api-key",
        "openai_base_url",
        "openai/gpt-image-2.6-sunburst",
        "openai",
    ),
    (
        OpenRouterProvider,
        openrouter_server.start_fake_openrouter,
        openrouter_server.DEFAULT_KEY,
        "imagegen-openrouter-api-key",
        "openrouter_base_url",
        "openai/gpt-5-image",
        "openrouter",
    ),
    (
        ReplicateProvider,
        replicate_server.start_fake_replicate,
        replicate_server.DEFAULT_KEY,
        "imagegen-replicate-api-token",
        "replicate_base_url",
        "black-forest-labs/flux.2-pro",
        "replicate",
    ),
]


@contextlib.asynccontextmanager
async def provider_with_secret_manager(case: tuple, secrets: dict[str, str]):  # type: ignore[no-untyped-def]
    cls, start_fake, _key, _secret_id, base_setting, _model, _name = case
    with start_fake(key=case[2]) as (base_url, fake), start_fake_secret_manager(secrets) as (endpoint, sm):
        settings = Settings(
            secrets="secret-manager",
            secret_manager_endpoint=endpoint,
            secret_project="test-project",
            upstream_max_attempts=2,
            **{base_setting: base_url},
        )
        source = SecretManagerSource(settings, credentials=Credentials(token="test"), environ={})
        fetcher, _ = routed_fetcher(fake)
        http = HttpClients(settings)
        provider: ImageProvider = cls(ProviderContext(settings=settings, secrets=source, http=http, fetcher=fetcher))
        try:
            yield provider, fake, sm
        finally:
            await http.aclose()
            await source.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=[c[6] for c in CASES])
async def test_key_is_read_from_secret_manager_and_sent_only_to_its_api(
    case: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _cls, _start, key, secret_id, _base, model, name = case
    async with provider_with_secret_manager(case, {secret_id: key}) as (provider, fake, sm):
        assert (await provider.availability()).available
        result = await provider.generate(request_for(model, name))
    assert result.images
    assert any(f"/secrets/{secret_id}/versions/latest:access" in r.path for r in sm.requests)
    api = fake.api_requests()
    assert api and all(r.headers["authorization"] == f"Bearer {key}" for r in api)
    assert_secret_absent(caplog.records, key)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=[c[6] for c in CASES])
async def test_missing_secret_makes_the_provider_unavailable_naming_the_secret(case: tuple) -> None:
    _cls, _start, _key, secret_id, _base, _model, _name = case
    async with provider_with_secret_manager(case, {}) as (provider, fake, _sm):
        availability = await provider.availability()
    assert not availability.available
    assert f"projects/test-project/secrets/{secret_id}" in (availability.reason or "")
    assert fake.api_requests() == []
