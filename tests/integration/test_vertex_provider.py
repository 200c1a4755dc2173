"""The Vertex AI / Gemini API adapter through the real google-genai client against the local :generateContent fake."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from imagegen_mcp.catalog import GenerationOptions, load_catalog
from imagegen_mcp.config import Settings
from imagegen_mcp.deadline import Deadline
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.types import InputImage
from imagegen_mcp.providers.base import ImageRequest, ProviderContext
from imagegen_mcp.providers.http_clients import HttpClients
from imagegen_mcp.providers.vertex import GeminiApiProvider, VertexProvider
from imagegen_mcp.secrets.base import EnvSecretSource
from tests.fakes.gemini_server import (
    FakeGemini,
    error_reply,
    image_reply,
    make_png,
    output_blocked_reply,
    prompt_blocked_reply,
    start_fake_gemini,
    text_only_reply,
)
from tests.fakes.google_token_server import (
    start_fake_token_server,
    vertex_subprocess_env,
    write_service_account_file,
)
from tests.support.loopback_guard import guard_subprocesses
from tests.support.timing import clearly_before

pytestmark = pytest.mark.anyio

MODEL_ID = "google/gemini-3-pro-image-preview"
UPSTREAM = "gemini-3-pro-image"
KEY = "test-gemini-key"
RESULT_PNG = make_png(32, 16, (10, 200, 10))


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeGemini]]:
    with start_fake_gemini(api_keys=(KEY, "rotated-key")) as served:
        yield served


class MutableSecrets(EnvSecretSource):
    """An env-style source whose values a test can rotate."""

    def set(self, name: str, value: str) -> None:
        self._environ[name] = value


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "google_cloud_project": "test-project",
        "google_cloud_location": "global",
        "upstream_max_attempts": 3,
        "upstream_timeout_seconds": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


def make_ctx(settings: Settings, secrets: EnvSecretSource | None = None) -> ProviderContext:
    return ProviderContext(
        settings=settings,
        secrets=secrets or MutableSecrets({"GEMINI_API_KEY": KEY}),
        http=HttpClients(settings),
        fetcher=None,  # type: ignore[arg-type]  # the Gemini adapter never fetches URLs
    )


def vertex(base_url: str, **settings: Any) -> VertexProvider:
    ctx = make_ctx(make_settings(google_vertex_base_url=base_url, **settings))
    return VertexProvider(ctx, credentials=Credentials(token="test"))


def gemini(base_url: str, secrets: EnvSecretSource | None = None, **settings: Any) -> GeminiApiProvider:
    return GeminiApiProvider(make_ctx(make_settings(gemini_base_url=base_url, **settings), secrets))


def request(*, n: int = 1, deadline: float = 20.0, images: tuple[InputImage, ...] = (), **options: Any) -> ImageRequest:
    return ImageRequest(
        prompt="a red fox reading a newspaper",
        model=load_catalog().get(MODEL_ID),
        upstream_id=UPSTREAM,
        options=GenerationOptions(n=n, **options),
        deadline=Deadline(deadline),
        images=images,
    )


async def expect_error(provider: Any, req: ImageRequest) -> ImageGenError:
    try:
        await provider.generate(req)
    except ImageGenError as err:
        return err
    finally:
        await provider.aclose()
    raise AssertionError("generate() did not fail")


# --- Vertex AI: request shape and success -----------------------------------------------------------------------
async def test_vertex_request_wire_format_and_result(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    ref_a, ref_b = make_png(8, 8, (1, 2, 3)), make_png(9, 9, (4, 5, 6))
    server.script(image_reply(RESULT_PNG, text="Here is your fox."))
    provider = vertex(url)
    result = await provider.generate(
        request(
            aspect_ratio="16:9",
            image_size="2K",
            seed=42,
            images=(InputImage(ref_a, "image/png", 8, 8), InputImage(ref_b, "image/png", 9, 9)),
        )
    )
    await provider.aclose()

    assert [img.data for img in result.images] == [RESULT_PNG]
    assert result.images[0].mime_type == "image/png"
    assert result.text == "Here is your fox."
    (sent,) = server.requests
    vertex_path = f"/v1beta1/projects/test-project/locations/global/publishers/google/models/{UPSTREAM}"
    assert sent.path == f"{vertex_path}:generateContent"
    assert sent.headers["authorization"] == "Bearer test"
    config = sent.generation_config
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert config["seed"] == 42
    assert sent.parts[0] == {"text": "a red fox reading a newspaper"}
    assert sent.inline_images == [("image/png", ref_a), ("image/png", ref_b)]
    # The per-attempt timeout is passed on to Google.
    assert 1 <= int(sent.headers["x-server-timeout"]) <= 30


async def test_vertex_without_options_sends_no_image_config(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    provider = vertex(url)
    await provider.generate(request())
    await provider.aclose()
    config = server.requests[0].generation_config
    assert "imageConfig" not in config and "seed" not in config


async def test_vertex_several_images_are_parallel_calls_with_distinct_seeds(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    pngs = [make_png(10 + i, 10, (i, i, i)) for i in range(3)]
    server.script(*(image_reply(p, delay=3.0) for p in pngs))
    provider = vertex(url)
    started = time.monotonic()
    result = await provider.generate(request(n=3, seed=7))
    elapsed = time.monotonic() - started
    await provider.aclose()

    assert len(server.requests) == 3
    assert sorted(img.data for img in result.images) == sorted(pngs)
    assert sorted(r.generation_config["seed"] for r in server.requests) == [7, 8, 9]
    clearly_before(elapsed, 3 * 3.0, "3 calls of 3 s must run in parallel")


async def test_vertex_failure_of_one_call_cancels_the_others(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(error_reply(403, "PERMISSION_DENIED", "denied"), image_reply(delay=30), image_reply(delay=30))
    started = time.monotonic()
    err = await expect_error(vertex(url), request(n=3))
    assert err.code is ErrorCode.MISCONFIGURED
    clearly_before(time.monotonic() - started, 30, "the other calls must be cancelled, not awaited")


async def test_vertex_thought_parts_are_skipped(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    drafts = [make_png(5, 5, (255, 255, 0)), make_png(6, 6, (0, 255, 255))]
    server.script(image_reply(RESULT_PNG, text="Final answer.", thought_images=drafts))
    provider = vertex(url)
    result = await provider.generate(request())
    await provider.aclose()
    assert [img.data for img in result.images] == [RESULT_PNG]
    assert result.text == "Final answer."


# --- Vertex AI: safety and empty answers ------------------------------------------------------------------------
async def test_vertex_prompt_blocked(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(prompt_blocked_reply("PROHIBITED_CONTENT", "The prompt violates the policy."))
    err = await expect_error(vertex(url), request())
    assert err.code is ErrorCode.CONTENT_BLOCKED
    assert "PROHIBITED_CONTENT" in err.message and "violates the policy" in err.message
    assert err.details["block_reason"] == "PROHIBITED_CONTENT"
    assert err.retryable is False
    assert len(server.requests) == 1


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "SPII"])
async def test_vertex_output_blocked(fake: tuple[str, FakeGemini], reason: str) -> None:
    url, server = fake
    server.script(output_blocked_reply(reason, "Unable to show the generated image."))
    err = await expect_error(vertex(url), request())
    assert err.code is ErrorCode.CONTENT_BLOCKED
    assert reason in err.message and "Unable to show" in err.message
    assert err.details["finish_reason"] == reason
    assert len(server.requests) == 1


async def test_vertex_answer_without_image_is_upstream_error(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(text_only_reply("I can only describe foxes, not draw them."))
    err = await expect_error(vertex(url), request())
    assert err.code is ErrorCode.UPSTREAM_ERROR
    assert "without returning an image" in err.message
    assert "STOP" in err.message and "describe foxes" in err.message
    assert len(server.requests) == 1  # not retried


# --- Vertex AI: HTTP errors, retries, deadline ------------------------------------------------------------------
async def test_vertex_429_retry_after_is_honoured(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(error_reply(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", headers={"Retry-After": "1"}))
    provider = vertex(url)
    started = time.monotonic()
    result = await provider.generate(request())
    await provider.aclose()
    assert len(result.images) == 1
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 1.0


async def test_vertex_429_beyond_the_deadline_is_rate_limited_with_hint(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "42s"}
    server.script(error_reply(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", details=[retry_info]))
    started = time.monotonic()
    err = await expect_error(vertex(url), request(deadline=30))
    assert err.code is ErrorCode.RATE_LIMITED
    assert err.retry_after_seconds == 42
    assert err.to_dict()["retry_after_seconds"] == 42
    assert "Quota exceeded." in err.message
    assert len(server.requests) == 1
    clearly_before(time.monotonic() - started, 30, "a 42 s Retry-After cannot fit a 30 s deadline: answer now")


async def test_vertex_500_then_success(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(error_reply(500, "INTERNAL", "Internal error encountered."), image_reply(RESULT_PNG))
    provider = vertex(url)
    result = await provider.generate(request())
    await provider.aclose()
    assert [img.data for img in result.images] == [RESULT_PNG]
    assert len(server.requests) == 2


async def test_vertex_persistent_503_is_upstream_error_after_max_attempts(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(*(error_reply(503, "UNAVAILABLE", "The service is currently unavailable.") for _ in range(5)))
    err = await expect_error(vertex(url, upstream_max_attempts=3), request())
    assert err.code is ErrorCode.UPSTREAM_ERROR
    assert err.retryable is True
    assert "503" in err.message
    assert len(server.requests) == 3


async def test_vertex_attempt_timeout_is_what_the_deadline_leaves(fake: tuple[str, FakeGemini]) -> None:
    """A 120 s per-attempt setting, 20 s left of the request: Google is told (and the call bounded by) the 20 s."""
    url, server = fake
    server.script(image_reply(RESULT_PNG))
    provider = vertex(url, upstream_timeout_seconds=120.0)
    await provider.generate(request(deadline=20.0))
    await provider.aclose()
    (sent,) = server.requests
    assert 1 <= int(sent.headers["x-server-timeout"]) <= 20


async def test_vertex_timeout_stays_inside_the_deadline(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(*(image_reply(delay=20) for _ in range(10)))
    started = time.monotonic()
    err = await expect_error(vertex(url, upstream_timeout_seconds=1.5, upstream_max_attempts=10), request(deadline=5))
    elapsed = time.monotonic() - started
    assert err.code is ErrorCode.UPSTREAM_TIMEOUT
    clearly_before(elapsed, 10 * 1.5, "retries must stop at the 5 s deadline, not run all 10 attempts")
    assert len(server.requests) >= 2  # timeouts are retried while the deadline allows


@pytest.mark.parametrize(
    ("status", "google_status", "code", "fragment"),
    [
        (403, "PERMISSION_DENIED", ErrorCode.MISCONFIGURED, "roles/aiplatform.user"),
        (401, "UNAUTHENTICATED", ErrorCode.MISCONFIGURED, "refused our credentials"),
        (404, "NOT_FOUND", ErrorCode.MISCONFIGURED, f"model {UPSTREAM} is not available in location global"),
        (400, "INVALID_ARGUMENT", ErrorCode.INVALID_ARGUMENT, "Unsupported aspect ratio 7:3."),
    ],
)
async def test_vertex_client_errors(
    fake: tuple[str, FakeGemini], status: int, google_status: str, code: ErrorCode, fragment: str
) -> None:
    url, server = fake
    server.script(error_reply(status, google_status, "Unsupported aspect ratio 7:3."))
    err = await expect_error(vertex(url), request())
    assert err.code is code
    assert fragment in err.message
    assert err.details["http_status"] == status
    assert len(server.requests) == 1  # client errors are not retried


# --- Vertex AI: availability and ADC ----------------------------------------------------------------------------
async def test_vertex_availability_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ctx_off = make_ctx(make_settings(vertex_enabled=False))
    assert (await VertexProvider(ctx_off).availability()).reason.startswith("Vertex AI is disabled")
    no_project = await VertexProvider(make_ctx(make_settings(google_cloud_project=None))).availability()
    assert not no_project.available and "GOOGLE_CLOUD_PROJECT" in (no_project.reason or "")

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    provider = VertexProvider(make_ctx(make_settings()))
    missing = await provider.availability()
    assert not missing.available
    assert "no Application Default Credentials" in (missing.reason or "")
    err = await expect_error(provider, request())
    assert err.code is ErrorCode.MISCONFIGURED


async def test_vertex_with_real_adc_from_a_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with start_fake_token_server() as (token_uri, tokens):
        adc = write_service_account_file(tmp_path / "adc.json", token_uri)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
        monkeypatch.setenv("NO_GCE_CHECK", "True")
        with start_fake_gemini(accept_bearer=tokens.is_valid) as (url, server):
            provider = VertexProvider(make_ctx(make_settings(google_vertex_base_url=url)))
            assert (await provider.availability()).available
            result = await provider.generate(request(n=2))
            await provider.aclose()
    assert len(result.images) == 2
    assert len(tokens.requests) == 1  # one refresh, reused by both calls
    assert tokens.requests[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {tokens.issued[0]}"}


def test_constructing_providers_does_not_import_google_genai() -> None:
    code = (
        "import sys\n"
        "from imagegen_mcp.config import Settings\n"
        "from imagegen_mcp.providers.http_clients import HttpClients\n"
        "from imagegen_mcp.providers.base import ProviderContext\n"
        "from imagegen_mcp.providers.vertex import GeminiApiProvider, VertexProvider\n"
        "from imagegen_mcp.secrets.base import EnvSecretSource\n"
        "s = Settings(google_cloud_project='p')\n"
        "ctx = ProviderContext(s, EnvSecretSource({}), HttpClients(s), None)\n"
        "VertexProvider(ctx); GeminiApiProvider(ctx)\n"
        "heavy = [m for m in sys.modules if m.startswith(('google.genai', 'google.auth'))]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- Gemini Developer API ---------------------------------------------------------------------------------------
async def test_gemini_api_key_path_and_result(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(image_reply(RESULT_PNG))
    provider = gemini(url)
    assert (await provider.availability()).available
    result = await provider.generate(request(aspect_ratio="1:1", image_size="1K"))
    await provider.aclose()
    assert [img.data for img in result.images] == [RESULT_PNG]
    (sent,) = server.requests
    assert sent.api == "developer"
    assert sent.path == f"/{sent.version}/models/{UPSTREAM}:generateContent"  # no key in the URL
    assert sent.headers["x-goog-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.generation_config["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "1K"}


async def test_gemini_same_adapter_behaviour(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    server.script(error_reply(500, "INTERNAL", "oops"), image_reply(RESULT_PNG, thought_images=[make_png(4, 4)]))
    provider = gemini(url)
    result = await provider.generate(request())
    assert [img.data for img in result.images] == [RESULT_PNG]
    server.script(output_blocked_reply("IMAGE_SAFETY"))
    err = await expect_error(provider, request())
    assert err.code is ErrorCode.CONTENT_BLOCKED


async def test_gemini_bad_key_is_misconfigured_and_never_logged(
    fake: tuple[str, FakeGemini], caplog: pytest.LogCaptureFixture
) -> None:
    url, _server = fake
    secret = "AIzaSy-very-secret-key-0123456789"
    caplog.set_level(logging.DEBUG)
    err = await expect_error(gemini(url, MutableSecrets({"GEMINI_API_KEY": secret})), request())
    assert err.code is ErrorCode.MISCONFIGURED
    assert "API key" in err.message and "GEMINI_API_KEY" in err.message
    assert secret not in str(err.to_dict())
    assert secret not in caplog.text
    assert secret not in repr(err.__cause__)


async def test_gemini_key_rotation_builds_a_new_client(fake: tuple[str, FakeGemini]) -> None:
    url, server = fake
    secrets = MutableSecrets({"GEMINI_API_KEY": KEY})
    provider = gemini(url, secrets)
    await provider.generate(request())
    secrets.set("GEMINI_API_KEY", "rotated-key")
    await provider.generate(request())
    await provider.aclose()
    assert [r.headers["x-goog-api-key"] for r in server.requests] == [KEY, "rotated-key"]


async def test_gemini_without_key_is_unavailable() -> None:
    provider = GeminiApiProvider(make_ctx(make_settings(), MutableSecrets({})))
    availability = await provider.availability()
    assert not availability.available and "GEMINI_API_KEY" in (availability.reason or "")
    err = await expect_error(provider, request())
    assert err.code is ErrorCode.MISCONFIGURED


def test_subprocess_env_is_enough_for_vertex(tmp_path: Path) -> None:
    """The variables `vertex_subprocess_env` documents let a fresh process resolve ADC and reach the fake."""
    code = (
        "import asyncio\n"
        "from imagegen_mcp.catalog import GenerationOptions, load_catalog\n"
        "from imagegen_mcp.config import Settings\n"
        "from imagegen_mcp.deadline import Deadline\n"
        "from imagegen_mcp.providers.http_clients import HttpClients\n"
        "from imagegen_mcp.providers.base import ImageRequest, ProviderContext\n"
        "from imagegen_mcp.providers.vertex import VertexProvider\n"
        "from imagegen_mcp.secrets.base import EnvSecretSource\n"
        "async def main():\n"
        "    s = Settings()\n"
        "    p = VertexProvider(ProviderContext(s, EnvSecretSource({}), HttpClients(s), None))\n"
        "    spec = load_catalog().get('google/gemini-3-pro-image')\n"
        "    r = await p.generate(ImageRequest('x', spec, 'gemini-3-pro-image', GenerationOptions(), Deadline(20)))\n"
        "    await p.aclose()\n"
        "    print(len(r.images[0].data))\n"
        "asyncio.run(main())\n"
    )
    with (
        start_fake_token_server() as (token_uri, tokens),
        start_fake_gemini(image_size=(40, 30), accept_bearer=tokens.is_valid) as (url, server),
    ):
        adc = write_service_account_file(tmp_path / "sa.json", token_uri)
        env = {"PATH": os.environ.get("PATH", ""), **vertex_subprocess_env(adc_file=adc, vertex_base_url=url)}
        guard_subprocesses(env)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == len(make_png(40, 30))
    assert server.requests[0].project == "test-project" and server.requests[0].location == "global"
    assert len(tokens.issued) == 1
