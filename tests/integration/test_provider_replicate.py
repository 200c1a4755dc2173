"""ReplicateProvider against a local fake of Replicate's predictions API (real adapter, client and guarded fetcher)."""

from __future__ import annotations

import base64
import logging
import time

import pytest

from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.providers.replicate import ReplicateProvider
from tests.fakes.http_fake import PUBLIC_IP, Reply
from tests.fakes.replicate_server import DEFAULT_KEY, FakeReplicate, start_fake_replicate
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

FLUX_PRO = "black-forest-labs/flux.2-pro"


fake = fake_fixture(start_fake_replicate)


def provider_for(
    started: tuple[str, FakeReplicate], key: str | None = DEFAULT_KEY, **settings: object
) -> ReplicateProvider:
    return keyed_provider(ReplicateProvider, started, "REPLICATE_API_TOKEN", "replicate_base_url", key, **settings)


def creates(fake: FakeReplicate) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/predictions")]


@pytest.mark.anyio
async def test_prediction_body_wait_header_and_downloaded_output(fake: tuple[str, FakeReplicate]) -> None:
    provider = provider_for(fake)
    fetcher, connector = routed_fetcher(fake[1])
    object.__setattr__(provider._ctx, "fetcher", fetcher)
    result = await provider.generate(request_for(FLUX_PRO, "replicate", aspect_ratio="16:9", seed=7, deadline=30))

    [sent] = creates(fake[1])
    assert sent.path == "/v1/models/black-forest-labs/flux-2-pro/predictions"
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    wait = int(sent.headers["prefer"].removeprefix("wait="))
    assert 1 <= wait < 30
    assert sent.json() == {
        "input": {
            "prompt": "a red bicycle leaning on a wall",
            "output_format": "png",
            "aspect_ratio": "16:9",
            "seed": 7,
        }
    }
    assert [img.mime_type for img in result.images] == ["image/png"]
    assert image_size(result.images[0].data) == (48, 32)
    assert [ip for ip, _, _ in connector.calls] == [PUBLIC_IP]
    downloads = [r for r in fake[1].requests if r.path.startswith("/files/")]
    assert len(downloads) == 1 and "authorization" not in downloads[0].headers


@pytest.mark.anyio
async def test_wait_is_capped_at_sixty_seconds(fake: tuple[str, FakeReplicate]) -> None:
    await provider_for(fake).generate(request_for(FLUX_PRO, "replicate", deadline=240))
    assert creates(fake[1])[0].headers["prefer"] == "wait=60"


@pytest.mark.anyio
async def test_jpeg_is_asked_as_jpg(fake: tuple[str, FakeReplicate]) -> None:
    result = await provider_for(fake).generate(
        request_for("black-forest-labs/flux.2-flex", "replicate", output_format="jpeg")
    )
    sent = creates(fake[1])[0]
    assert sent.path == "/v1/models/black-forest-labs/flux-2-flex/predictions"
    assert sent.json()["input"]["output_format"] == "jpg"
    assert result.images[0].mime_type == "image/jpeg"


@pytest.mark.anyio
async def test_reference_images_become_input_images(fake: tuple[str, FakeReplicate]) -> None:
    first, second = input_image(40, 30), input_image(20, 20, "WEBP")
    await provider_for(fake).generate(request_for(FLUX_PRO, "replicate", "combine", images=(first, second)))
    sent_input = creates(fake[1])[0].json()["input"]
    assert sent_input["input_images"] == [
        "data:image/png;base64," + base64.b64encode(first.data).decode(),
        "data:image/webp;base64," + base64.b64encode(second.data).decode(),
    ]
    assert sent_input["aspect_ratio"] == "match_input_image"


@pytest.mark.anyio
async def test_unfinished_prediction_is_polled_until_done() -> None:
    with start_fake_replicate(polls_needed=3, output_list=True) as started:
        result = await provider_for(started).generate(request_for(FLUX_PRO, "replicate"))
        fake = started[1]
        polls = [r for r in fake.requests if r.method == "GET" and r.path.startswith("/v1/predictions/")]
    assert len(result.images) == 1
    assert len(polls) == 3
    assert all(r.headers["authorization"] == f"Bearer {DEFAULT_KEY}" for r in polls)


@pytest.mark.anyio
async def test_polling_stops_at_the_deadline_and_cancels_the_prediction() -> None:
    with start_fake_replicate(polls_needed=10_000) as started:
        fake = started[1]
        began = time.monotonic()
        with pytest.raises(ImageGenError) as info:
            await provider_for(started).generate(request_for(FLUX_PRO, "replicate", deadline=4))
        elapsed = time.monotonic() - began
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    clearly_before(elapsed, 4 * 4, "polling must stop at the 4 s deadline")
    assert fake.cancelled == list(fake.predictions)
    assert all(p["status"] == "canceled" for p in fake.predictions.values())


@pytest.mark.anyio
async def test_n_images_are_parallel_predictions(fake: tuple[str, FakeReplicate]) -> None:
    result = await provider_for(fake).generate(request_for(FLUX_PRO, "replicate", n=3, output_format="webp"))
    assert len(creates(fake[1])) == 3
    assert [img.mime_type for img in result.images] == ["image/webp"] * 3


@pytest.mark.anyio
async def test_nsfw_failure_is_content_blocked() -> None:
    with start_fake_replicate(fail_with="NSFW content detected. Try running it again, or try a different prompt.") as s:
        with pytest.raises(ImageGenError) as info:
            await provider_for(s).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.CONTENT_BLOCKED
    assert "NSFW content detected" in info.value.details["reason"]


@pytest.mark.anyio
async def test_other_failure_is_upstream_error() -> None:
    with start_fake_replicate(fail_with="CUDA out of memory") as started:
        with pytest.raises(ImageGenError) as info:
            await provider_for(started).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert "CUDA out of memory" in info.value.message


@pytest.mark.anyio
async def test_rejected_token_is_misconfigured_and_never_echoed(
    fake: tuple[str, FakeReplicate], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "r8_wrong_DO_NOT_LEAK_4242"
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake, key=wrong).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.MISCONFIGURED
    assert "the Replicate key configured for this deployment was rejected" in info.value.message
    assert_secret_absent(caplog.records, wrong, info.value.message, repr(info.value.to_dict()))


@pytest.mark.anyio
async def test_invalid_input_is_invalid_argument_with_the_field(fake: tuple[str, FakeReplicate]) -> None:
    fake[1].script(
        Reply(
            status=422,
            json={
                "title": "Input validation failed",
                "detail": "- input.aspect_ratio: must be one of ...",
                "invalid_fields": [{"field": "input.aspect_ratio", "description": "aspect_ratio must be one of ..."}],
            },
        )
    )
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    assert "aspect_ratio must be one of" in info.value.message


@pytest.mark.anyio
async def test_429_retry_after_is_honoured_then_succeeds(fake: tuple[str, FakeReplicate]) -> None:
    fake[1].script(
        Reply(
            status=429,
            json={"title": "Request was throttled.", "detail": "Expected available in 1 second."},
            headers={"Retry-After": "1"},
        )
    )
    started = time.monotonic()
    result = await provider_for(fake).generate(request_for(FLUX_PRO, "replicate"))
    assert time.monotonic() - started >= 0.95
    assert len(result.images) == 1 and len(creates(fake[1])) == 2


@pytest.mark.anyio
async def test_500_then_success_is_retried(fake: tuple[str, FakeReplicate]) -> None:
    fake[1].script(Reply(status=503, json={"detail": "Service Unavailable"}))
    result = await provider_for(fake).generate(request_for(FLUX_PRO, "replicate"))
    assert len(result.images) == 1 and len(creates(fake[1])) == 2


@pytest.mark.anyio
async def test_create_timeout_is_upstream_timeout(fake: tuple[str, FakeReplicate]) -> None:
    fake[1].script(*[Reply(status=201, json={}, hang=30.0) for _ in range(3)])
    started = time.monotonic()
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for(FLUX_PRO, "replicate", deadline=1.5))
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT
    clearly_before(time.monotonic() - started, 30.0, "the 1.5 s deadline must cut a 30 s hang")


@pytest.mark.anyio
async def test_malformed_json_is_upstream_error(fake: tuple[str, FakeReplicate]) -> None:
    fake[1].script(*[Reply(status=201, body=b"{'id': oops") for _ in range(3)])
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR and "malformed JSON" in info.value.message


@pytest.mark.anyio
@pytest.mark.parametrize("prediction", [{"status": "succeeded"}, {"id": "../../x", "status": "succeeded"}])
async def test_answer_without_usable_prediction_is_upstream_error(
    fake: tuple[str, FakeReplicate], prediction: dict
) -> None:
    fake[1].script(Reply(status=201, json=prediction))
    with pytest.raises(ImageGenError) as info:
        await provider_for(fake).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR


@pytest.mark.anyio
async def test_success_without_output_is_upstream_error() -> None:
    with start_fake_replicate(no_output=True) as started:
        with pytest.raises(ImageGenError) as info:
            await provider_for(started).generate(request_for(FLUX_PRO, "replicate"))
    assert info.value.code is ErrorCode.UPSTREAM_ERROR and "no image" in info.value.message


@pytest.mark.anyio
async def test_availability_names_where_the_token_goes(fake: tuple[str, FakeReplicate]) -> None:
    missing = await provider_for(fake, key=None).availability()
    assert not missing.available
    assert missing.reason == "no Replicate API token configured (set REPLICATE_API_TOKEN)"
    assert (await provider_for(fake).availability()).available
