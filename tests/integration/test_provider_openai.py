"""OpenAIImagesProvider against a local fake of the OpenAI Images API (real adapter, httpx2 client and fetcher)."""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import replace

import pytest

from imagegen_mcp.catalog import load_catalog
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers.openai_images import OpenAIImagesProvider, flexible_size
from tests.fakes.http_fake import PUBLIC_IP, Reply, error_reply
from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI, start_fake_openai
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

fake = fake_fixture(start_fake_openai)


def provider_for(
    started: tuple[str, FakeOpenAI], key: str | None = DEFAULT_KEY, **settings: object
) -> OpenAIImagesProvider:
    return keyed_provider(OpenAIImagesProvider, started, "OPENAI_API_KEY", "openai_base_url", key, **settings)


@pytest.mark.anyio
async def test_generate_sends_documented_body_and_returns_images(fake: tuple[str, FakeOpenAI]) -> None:
    provider = provider_for(fake)
    request = request_for(
        "openai/gpt-image-2.6-sunburst", "openai", aspect_ratio="3:2", quality="high", background="transparent", n=1
    )
    result = await provider.generate(request)

    [sent] = fake[1].api_requests()
    assert (sent.method, sent.path) == ("POST", "/v1/images/generations")
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.json() == {
        "model": "gpt-image-2.6-sunburst",
        "prompt": "a red bicycle leaning on a wall",
        "n": 1,
        "size": "1248x832",
        "quality": "high",
        "background": "transparent",
        "output_format": "png",
    }
    assert len(result.images) == 1
    assert result.images[0].mime_type == "image/png"
    assert image_size(result.images[0].data) == (64, 64)
    assert result.details["size"] == "1248x832"


@pytest.mark.anyio
@pytest.mark.parametrize(("aspect", "size"), [("1:1", "1024x1024"), ("2:3", "832x1248"), ("3:2", "1248x832")])
async def test_an_aspect_ratio_alone_gets_the_1k_size(fake: tuple[str, FakeOpenAI], aspect: str, size: str) -> None:
    await provider_for(fake).generate(request_for("openai/gpt-image-2.6-flare", "openai", aspect_ratio=aspect))
    assert fake[1].api_requests()[-1].json()["size"] == size == flexible_size(aspect, "1K")


@pytest.mark.anyio
async def test_a_size_tier_alone_is_square(fake: tuple[str, FakeOpenAI]) -> None:
    await provider_for(fake).generate(request_for("openai/gpt-image-2.6-flare", "openai", image_size="2K"))
    assert fake[1].api_requests()[-1].json()["size"] == "2048x2048"


@pytest.mark.anyio
async def test_no_aspect_ratio_leaves_size_to_the_api(fake: tuple[str, FakeOpenAI]) -> None:
    await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai", output_format="webp"))
    body = fake[1].api_requests()[-1].json()
    assert "size" not in body
    assert body["output_format"] == "webp"


@pytest.mark.anyio
async def test_several_images_in_one_call(fake: tuple[str, FakeOpenAI]) -> None:
    result = await provider_for(fake).generate(
        request_for("openai/gpt-image-2.6-sunburst", "openai", n=3, output_format="jpeg")
    )
    assert len(fake[1].api_requests()) == 1
    assert fake[1].api_requests()[0].json()["n"] == 3
    assert [img.mime_type for img in result.images] == ["image/jpeg"] * 3


@pytest.mark.parametrize("aspect", ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"])
@pytest.mark.parametrize("tier", ["1K", "2K", "4K"])
def test_flexible_sizes_obey_the_documented_rules(aspect: str, tier: str) -> None:
    w, h = (int(v) for v in flexible_size(aspect, tier).split("x"))
    a, b = (int(v) for v in aspect.split(":"))
    assert w % 16 == 0 and h % 16 == 0
    assert max(w, h) <= 3840 and max(w, h) / min(w, h) <= 3
    assert 655_360 <= w * h <= 8_294_400
    assert abs(w / h - a / b) / (a / b) < 0.03


@pytest.mark.anyio
async def test_flexible_size_model_gets_a_computed_size(fake: tuple[str, FakeOpenAI]) -> None:
    await provider_for(fake).generate(
        request_for("openai/gpt-image-2", "openai", aspect_ratio="16:9", image_size="2K", quality="low")
    )
    assert fake[1].api_requests()[-1].json()["size"] == flexible_size("16:9", "2K")


@pytest.mark.anyio
async def test_edit_is_multipart_with_all_images_and_the_mask(fake: tuple[str, FakeOpenAI]) -> None:
    first, second = input_image(40, 30), input_image(20, 20, "JPEG")
    mask = input_image(40, 30)
    request = request_for(
        "openai/gpt-image-2.6-sunburst", "openai", "make it blue", images=(first, second), mask=mask, n=2, quality="low"
    )
    result = await provider_for(fake).generate(request)

    [sent] = fake[1].api_requests()
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.fields() == {
        "model": "gpt-image-2.6-sunburst",
        "prompt": "make it blue",
        "n": "2",
        "quality": "low",
        "output_format": "png",
    }
    files = sent.files()
    assert [(name, ctype) for name, ctype, _ in files] == [
        ("image[]", "image/png"),
        ("image[]", "image/jpeg"),
        ("mask", "image/png"),
    ]
    assert files[0][2] == first.data and files[1][2] == second.data and files[2][2] == mask.data
    assert len(result.images) == 2


@pytest.mark.anyio
async def test_non_png_mask_is_converted_to_png(fake: tuple[str, FakeOpenAI]) -> None:
    request = request_for(
        "openai/gpt-image-2.6-sunburst", "openai", images=(input_image(),), mask=input_image(40, 30, "JPEG")
    )
    await provider_for(fake).generate(request)
    mask = next(data for name, _, data in fake[1].api_requests()[0].files() if name == "mask")
    assert mask.startswith(b"\x89PNG") and image_size(mask) == (40, 30)


@pytest.mark.anyio
async def test_url_outputs_are_fetched_through_the_guarded_fetcher() -> None:
    with start_fake_openai(output="url") as started:
        fake = started[1]
        provider = provider_for(started)
        # Watch the connector of the provider's own fetcher.
        fetcher, connector = routed_fetcher(fake)
        object.__setattr__(provider._ctx, "fetcher", fetcher)
        result = await provider.generate(request_for("openai/gpt-image-2.6-sunburst", "openai", n=2))
    assert len(result.images) == 2
    assert [ip for ip, _, _ in connector.calls] == [PUBLIC_IP, PUBLIC_IP]
    downloads = [r for r in fake.requests if r.path.startswith("/files/")]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads), "the key must only go to the API host"


@pytest.mark.anyio
@pytest.mark.parametrize("code", ["moderation_blocked", "content_policy_violation"])
async def test_content_policy_refusal_is_content_blocked(fake: tuple[str, FakeOpenAI], code: str) -> None:
    fake[1].script(
        error_reply(400, "Your request was rejected by the safety system. safety_violations=[violence].", code)
    )
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.CONTENT_BLOCKED
    assert "safety_violations=[violence]" in info.value.message
    assert info.value.details["upstream_code"] == code
    assert len(fake[1].api_requests()) == 1, "a refusal is not retried"


@pytest.mark.anyio
async def test_rejected_key_is_misconfigured_and_never_echoed(
    fake: tuple[str, FakeOpenAI], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-DO-NOT-LEAK-123456"
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake, key=wrong).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.MISCONFIGURED
    assert "the OpenAI key configured for this deployment was rejected" in info.value.message
    assert not info.value.retryable
    assert fake[1].api_requests()[0].headers["authorization"] == f"Bearer {wrong}"
    assert_secret_absent(caplog.records, wrong, info.value.message, repr(info.value.to_dict()))
    assert_secret_absent(caplog.records, "sk-wrong")


@pytest.mark.anyio
async def test_bad_request_message_is_passed_on_trimmed(fake: tuple[str, FakeOpenAI]) -> None:
    fake[1].script(error_reply(400, "Invalid size 'x'.\n" + "y" * 1000, "invalid_value"))
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    assert info.value.message.startswith("OpenAI rejected the request: Invalid size 'x'. yyy")
    assert len(info.value.message) < 400


@pytest.mark.anyio
async def test_429_retry_after_is_honoured_then_succeeds(fake: tuple[str, FakeOpenAI]) -> None:
    limited = error_reply(429, "Rate limit reached", "rate_limit_exceeded")
    limited.headers["Retry-After"] = "1"
    fake[1].script(limited)
    started = time.monotonic()
    result = await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert time.monotonic() - started >= 0.95
    assert len(result.images) == 1
    assert len(fake[1].api_requests()) == 2


@pytest.mark.anyio
async def test_429_whose_retry_after_exceeds_the_deadline_goes_to_the_caller(fake: tuple[str, FakeOpenAI]) -> None:
    limited = error_reply(429, "Rate limit reached", "rate_limit_exceeded")
    limited.headers["Retry-After"] = email.utils.formatdate(time.time() + 120, usegmt=True)
    fake[1].script(limited)
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai", deadline=10))
    assert info.value.code is ErrorCode.RATE_LIMITED
    assert 100 < (info.value.retry_after_seconds or 0) <= 120
    assert len(fake[1].api_requests()) == 1


@pytest.mark.anyio
async def test_500_then_success_is_retried(fake: tuple[str, FakeOpenAI]) -> None:
    fake[1].script(error_reply(500, "The server had an error", None))
    result = await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert len(result.images) == 1
    assert len(fake[1].api_requests()) == 2


@pytest.mark.anyio
async def test_persistent_500_gives_up_after_max_attempts(fake: tuple[str, FakeOpenAI]) -> None:
    fake[1].script(*[error_reply(502, "bad gateway", None) for _ in range(5)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR and info.value.retryable
    assert len(fake[1].api_requests()) == 3


@pytest.mark.anyio
async def test_slow_attempt_times_out_and_the_retry_succeeds(fake: tuple[str, FakeOpenAI]) -> None:
    fake[1].script(Reply(json={"data": []}, hang=3.0))
    provider = provider_for(fake, upstream_timeout_seconds=0.5)
    result = await provider.generate(request_for("openai/gpt-image-2.6-sunburst", "openai", deadline=20))
    assert len(result.images) == 1
    assert len(fake[1].api_requests()) == 2


@pytest.mark.anyio
async def test_timeouts_until_the_deadline_are_upstream_timeout(fake: tuple[str, FakeOpenAI]) -> None:
    fake[1].script(*[Reply(json={"data": []}, hang=30.0) for _ in range(3)])
    started = time.monotonic()
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai", deadline=1.5))
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    clearly_before(time.monotonic() - started, 30.0, "the 1.5 s deadline must cut a 30 s hang")


@pytest.mark.anyio
async def test_malformed_json_is_upstream_error(fake: tuple[str, FakeOpenAI]) -> None:
    fake[1].script(*[Reply(body=b"{not json", content_type="application/json") for _ in range(3)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert "malformed JSON" in info.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [{"created": 1, "data": []}, {"created": 1}, {"data": [{"b64_json": ""}]}, {"data": [{"b64_json": "aGVsbG8="}]}],
)
async def test_answer_without_an_image_is_upstream_error(fake: tuple[str, FakeOpenAI], body: dict) -> None:
    fake[1].script(*[Reply(json=body) for _ in range(3)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR


@pytest.mark.anyio
async def test_availability_names_where_the_key_goes(fake: tuple[str, FakeOpenAI]) -> None:
    missing = await provider_for(fake, key=None).availability()
    assert not missing.available
    assert missing.reason == "no OpenAI API key configured (set OPENAI_API_KEY)"
    assert (await provider_for(fake).availability()).available
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake, key=None).generate(request_for("openai/gpt-image-2.6-sunburst", "openai"))
    assert info.value.code is ErrorCode.MISCONFIGURED
    assert fake[1].api_requests() == []


@pytest.mark.anyio
async def test_retired_gpt_image_1_is_served_by_its_replacement(fake: tuple[str, FakeOpenAI]) -> None:
    # OpenAI: "gpt-image-1 was shut down on October 23, 2026. Use gpt-image-2.5-sunburst or gpt-image-2.5-flare".
    await provider_for(fake).generate(request_for("openai/gpt-image-1", "openai", aspect_ratio="3:2"))
    sent = fake[1].api_requests()[0].json()
    assert sent["model"] == "gpt-image-2.5-flare"
    assert sent["size"] == "1248x832"  # flexible sizing now, since the replacement takes flexible sizes


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "upstream"),
    [
        ("openai/gpt-image-1.5", "gpt-image-2.6-sunburst"),
        ("openai/chatgpt-image-latest", "gpt-image-2.6-sunburst"),
        ("openai/gpt-image-1-mini", "gpt-image-2.6-flare"),
    ],
)
async def test_models_shut_down_on_2026_12_01_are_served_by_their_replacement(
    fake: tuple[str, FakeOpenAI], model: str, upstream: str
) -> None:
    # OpenAI's deprecations page: shut down Dec 1, 2026; replacement "gpt-image-2.6-sunburst or gpt-image-2.6-flare".
    result = await provider_for(fake).generate(
        request_for(model, "openai", aspect_ratio="16:9", image_size="4K", quality="max")
    )
    sent = fake[1].api_requests()[0].json()
    assert (sent["model"], sent["size"], sent["quality"]) == (upstream, flexible_size("16:9", "4K"), "max")
    assert len(result.images) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("upstream", ["gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest", "gpt-image-1"])
async def test_fake_refuses_shut_down_models_like_the_api(fake: tuple[str, FakeOpenAI], upstream: str) -> None:
    """The fake can fail the remapping tests: a shut-down id sent upstream gets OpenAI's 404 model_not_found."""
    request = request_for("openai/gpt-image-2.6-sunburst", "openai")
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(replace(request, upstream_id=upstream))
    assert info.value.code is ErrorCode.MISCONFIGURED
    assert "does not know the requested model" in info.value.message and upstream in info.value.message
    assert len(fake[1].api_requests()) == 1, "a 404 is not retried"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-image-2.5-flare",
        "openai/gpt-image-2.5-flare-2026-09-08",
        "openai/gpt-image-2.5-sunburst",
        "openai/gpt-image-2.5-sunburst-2026-09-08",
        "openai/gpt-image-2.6-flare",
        "openai/gpt-image-2.6-sunburst",
    ],
)
async def test_gpt_image_2_5_and_2_6_take_every_catalogued_size_and_quality(
    fake: tuple[str, FakeOpenAI], model: str
) -> None:
    """Every aspect ratio × tier × quality the catalog offers reaches the fake, which checks the documented rules."""
    spec = load_catalog().get(model)
    caps = spec.capabilities
    provider = provider_for(fake)
    for ratio in caps.aspect_ratios:
        for tier in caps.image_sizes:
            await provider.generate(request_for(model, "openai", aspect_ratio=ratio, image_size=tier, quality="high"))
    for quality in caps.qualities:
        await provider.generate(request_for(model, "openai", quality=quality, background="transparent"))
    sent = [r.json() for r in fake[1].api_requests()]
    assert {s["model"] for s in sent} == {spec.offers[0].upstream_id}
    assert {s.get("quality") for s in sent} >= {"xhigh", "max"}
    assert fake[1].counts.get("ok") == len(sent)


@pytest.mark.anyio
async def test_fake_refuses_a_quality_the_older_models_do_not_document(fake: tuple[str, FakeOpenAI]) -> None:
    """The fake's rules can fail: xhigh is a 2.5/2.6 quality, and gpt-image-2 gets a 400 for it."""
    request = request_for("openai/gpt-image-2", "openai")  # the catalog itself would refuse xhigh here
    bad = replace(request, options=replace(request.options, quality="xhigh"))
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(bad)
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    assert "xhigh" in info.value.message
