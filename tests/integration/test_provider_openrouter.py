"""OpenRouterProvider against a local fake of OpenRouter's chat-completions API (real adapter, client and fetcher)."""

from __future__ import annotations

import base64
import logging
import time

import pytest

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers.openrouter import OpenRouterProvider
from tests.fakes.http_fake import PUBLIC_IP, Reply, error_reply, make_image
from tests.fakes.openrouter_server import DEFAULT_KEY, FakeOpenRouter, completion, png_data_url, start_fake_openrouter
from tests.integration.provider_support import (
    assert_secret_absent,
    fake_fixture,
    image_size,
    input_image,
    keyed_provider,
    request_for,
    routed_fetcher,
)
from tests.support.timing import clearly_before

fake = fake_fixture(start_fake_openrouter)


def provider_for(
    started: tuple[str, FakeOpenRouter], key: str | None = DEFAULT_KEY, **settings: object
) -> OpenRouterProvider:
    return keyed_provider(OpenRouterProvider, started, "OPENROUTER_API_KEY", "openrouter_base_url", key, **settings)


@pytest.mark.anyio
async def test_generate_sends_chat_completion_with_image_modality(fake: tuple[str, FakeOpenRouter]) -> None:
    provider = provider_for(fake, public_url="https://imagegen.example.com")
    result = await provider.generate(request_for("openai/gpt-5-image", "openrouter", aspect_ratio="3:2"))

    [sent] = fake[1].api_requests()
    assert (sent.method, sent.path) == ("POST", "/api/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.headers["x-title"] == "imagegen-mcp"
    assert sent.headers["http-referer"] == "https://imagegen.example.com"
    assert sent.json() == {
        "model": "openai/gpt-5-image",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a red bicycle leaning on a wall"}]}],
        "modalities": ["image", "text"],
        "stream": False,
        "image_config": {"aspect_ratio": "3:2"},
    }
    assert [img.mime_type for img in result.images] == ["image/png"]
    assert image_size(result.images[0].data) == (32, 32)
    assert result.text == "Here is your image."


@pytest.mark.anyio
async def test_flux_asks_for_image_only_and_passes_seed(fake: tuple[str, FakeOpenRouter]) -> None:
    await provider_for(fake).generate(
        request_for("black-forest-labs/flux.2-pro", "openrouter", aspect_ratio="16:9", seed=42)
    )
    body = fake[1].api_requests()[0].json()
    assert body["model"] == "black-forest-labs/flux.2-pro"
    assert body["modalities"] == ["image"]
    assert body["seed"] == 42
    assert body["image_config"] == {"aspect_ratio": "16:9"}
    assert "http-referer" not in fake[1].api_requests()[0].headers


@pytest.mark.anyio
async def test_google_model_gets_image_size(fake: tuple[str, FakeOpenRouter]) -> None:
    await provider_for(fake).generate(
        request_for("google/gemini-3-pro-image-preview", "openrouter", aspect_ratio="21:9", image_size="4K")
    )
    body = fake[1].api_requests()[0].json()
    assert body["image_config"] == {"aspect_ratio": "21:9", "image_size": "4K"}
    assert body["modalities"] == ["image", "text"]


@pytest.mark.anyio
async def test_reference_images_go_as_data_url_parts(fake: tuple[str, FakeOpenRouter]) -> None:
    first, second = input_image(40, 30), input_image(16, 16, "JPEG")
    request = request_for("black-forest-labs/flux.2-flex", "openrouter", "put them together", images=(first, second))
    await provider_for(fake).generate(request)
    content = fake[1].api_requests()[0].json()["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "put them together"}
    assert [part["type"] for part in content[1:]] == ["image_url", "image_url"]
    urls = [part["image_url"]["url"] for part in content[1:]]
    assert urls[0] == "data:image/png;base64," + base64.b64encode(first.data).decode()
    assert urls[1] == "data:image/jpeg;base64," + base64.b64encode(second.data).decode()


@pytest.mark.anyio
async def test_n_images_are_parallel_calls(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].delay = 2.0
    started = time.monotonic()
    result = await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter", n=4))
    assert len(result.images) == 4
    assert len(fake[1].api_requests()) == 4
    clearly_before(time.monotonic() - started, 4 * 2.0, "the four calls must run concurrently")


@pytest.mark.anyio
async def test_several_images_in_one_answer_are_all_kept_up_to_n(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(Reply(json=completion([png_data_url(8, 8), png_data_url(16, 16)])))
    result = await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter", n=1))
    assert len(result.images) == 1


@pytest.mark.anyio
async def test_http_image_urls_are_fetched_through_the_guarded_fetcher() -> None:
    with start_fake_openrouter(output="url") as started:
        fake = started[1]
        provider = provider_for(started)
        fetcher, connector = routed_fetcher(fake)
        object.__setattr__(provider._ctx, "fetcher", fetcher)
        result = await provider.generate(request_for("black-forest-labs/flux.2-pro", "openrouter", n=2))
    assert len(result.images) == 2
    assert [ip for ip, _, _ in connector.calls] == [PUBLIC_IP, PUBLIC_IP]
    downloads = [r for r in fake.requests if r.path.startswith("/files/")]
    assert downloads and all("authorization" not in r.headers for r in downloads)


@pytest.mark.anyio
async def test_moderation_refusal_is_content_blocked(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(
        error_reply(
            403,
            'openai/gpt-5-image requires moderation on OpenAI. Your input was flagged for "violence".',
            403,
            metadata={"reasons": ["violence"], "flagged_input": "a red...", "provider_name": "OpenAI"},
        )
    )
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert info.value.code is ErrorCode.CONTENT_BLOCKED
    assert info.value.details["reason"] == "violence"
    assert len(fake[1].api_requests()) == 1


@pytest.mark.anyio
async def test_safety_finish_without_image_is_content_blocked(fake: tuple[str, FakeOpenRouter]) -> None:
    refusal = completion(
        [], "I can't create that image.", finish_reason="content_filter", native_finish_reason="IMAGE_SAFETY"
    )
    fake[1].script(Reply(json=refusal))
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("google/gemini-3-pro-image-preview", "openrouter"))
    assert info.value.code is ErrorCode.CONTENT_BLOCKED
    assert "I can't create that image." in info.value.message


@pytest.mark.anyio
async def test_rejected_key_is_misconfigured_and_never_echoed(
    fake: tuple[str, FakeOpenRouter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-or-v1-wrong-DO-NOT-LEAK-9876"
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake, key=wrong).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert info.value.code is ErrorCode.MISCONFIGURED
    assert "the OpenRouter key configured for this deployment was rejected" in info.value.message
    assert_secret_absent(caplog.records, wrong, info.value.message, repr(info.value.to_dict()))


@pytest.mark.anyio
async def test_insufficient_credits_is_misconfigured(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(error_reply(402, "Insufficient credits", 402))
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert info.value.code is ErrorCode.MISCONFIGURED and "402" in info.value.message


@pytest.mark.anyio
async def test_429_retry_after_is_honoured_then_succeeds(fake: tuple[str, FakeOpenRouter]) -> None:
    limited = error_reply(429, "Rate limit exceeded", 429)
    limited.headers["Retry-After"] = "1"
    fake[1].script(limited)
    started = time.monotonic()
    result = await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert time.monotonic() - started >= 0.95
    assert len(result.images) == 1 and len(fake[1].api_requests()) == 2


@pytest.mark.anyio
async def test_500_then_success_is_retried(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(error_reply(502, "Provider returned error", 502))
    result = await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert len(result.images) == 1 and len(fake[1].api_requests()) == 2


@pytest.mark.anyio
async def test_error_inside_a_200_answer_is_mapped(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(*[Reply(json={"error": {"code": 502, "message": "upstream overloaded"}}) for _ in range(3)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert "upstream overloaded" in info.value.message


@pytest.mark.anyio
async def test_timeout_is_upstream_timeout_within_the_deadline(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(*[Reply(json=completion([]), hang=30.0) for _ in range(3)])
    started = time.monotonic()
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter", deadline=1.5))
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    clearly_before(time.monotonic() - started, 30.0, "the 1.5 s deadline must cut a 30 s hang")


@pytest.mark.anyio
async def test_malformed_json_is_upstream_error(fake: tuple[str, FakeOpenRouter]) -> None:
    fake[1].script(*[Reply(body=b"<html>gateway</html>") for _ in range(3)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR and "malformed JSON" in info.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        completion([], "Sure! Here is a description instead."),
        {"choices": []},
        {"choices": [{"message": {"images": [{"image_url": {"url": "data:image/png;base64,!!!"}}]}}]},
        completion(["data:image/png;base64," + base64.b64encode(b"not an image at all").decode()]),
        completion(["ftp://example.com/x.png"]),
    ],
)
async def test_answer_without_an_image_is_upstream_error(fake: tuple[str, FakeOpenRouter], body: dict) -> None:
    fake[1].script(*[Reply(json=body) for _ in range(3)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR


@pytest.mark.anyio
async def test_jpeg_data_url_keeps_its_type(fake: tuple[str, FakeOpenRouter]) -> None:
    jpeg = "data:image/jpeg;base64," + base64.b64encode(make_image(10, 10, "JPEG")).decode()
    fake[1].script(Reply(json=completion([jpeg])))
    result = await provider_for(fake).generate(request_for("openai/gpt-5-image", "openrouter"))
    assert result.images[0].mime_type == "image/jpeg"


@pytest.mark.anyio
async def test_availability_names_where_the_key_goes(fake: tuple[str, FakeOpenRouter]) -> None:
    missing = await provider_for(fake, key=None).availability()
    assert not missing.available
    assert missing.reason == "no OpenRouter API key configured (set OPENROUTER_API_KEY)"
    assert (await provider_for(fake).availability()).available
