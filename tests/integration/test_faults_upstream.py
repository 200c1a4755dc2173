"""Upstream faults through the MCP endpoint: each ends as a typed error (or retried success) within the deadline."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from tests.fakes.http_fake import Reply, error_reply, make_image
from tests.fakes.openai_server import FakeOpenAI, start_fake_openai
from tests.integration.reliability_support import (
    assert_success,
    error_code,
    generate,
    mcp_client,
    openai_env,
    output_files,
    raw_upstream,
)
from tests.support.servers import ServerHandle, start_server

DEADLINE = 6.0
SLACK = 2.0  # process scheduling, MCP framing and the store on a loaded 2-core machine


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, ServerHandle]]:
    with start_fake_openai() as (base_url, fake), start_server(openai_env(base_url)) as handle:
        yield fake, handle


@pytest.fixture
def fake(upstream: tuple[FakeOpenAI, ServerHandle]) -> Iterator[FakeOpenAI]:
    fake = upstream[0]
    fake.requests.clear()
    yield fake
    fake.fault_429 = fake.fault_500 = fake.fault_timeout = 0.0
    fake.retry_after = "1"
    fake._script.clear()  # a test that failed early must not leave replies for the next one


@pytest.fixture
def server(upstream: tuple[FakeOpenAI, ServerHandle]) -> ServerHandle:
    return upstream[1]


async def call(handle: ServerHandle, prompt: str = "a lighthouse at dusk") -> tuple[str | None, dict, float]:
    """One generate_image call; returns (error code or None, structuredContent, seconds taken)."""
    started = time.monotonic()
    async with mcp_client(handle.mcp_url) as client:
        result = await generate(client, prompt)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + SLACK, f"call took {elapsed:.1f}s, deadline is {DEADLINE}s"
    return error_code(result), dict(result.structured_content or {}), elapsed


def ok_body() -> dict:
    return {"created": 1, "data": [{"b64_json": base64.b64encode(make_image(32, 32)).decode()}]}


@pytest.mark.anyio
async def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeOpenAI, server: ServerHandle) -> None:
    limited = error_reply(429, "Rate limit reached", "rate_limit_exceeded")
    limited.headers["Retry-After"] = "1"
    fake.script(limited)
    before = set(output_files(server))
    code, body, elapsed = await call(server)
    assert code is None, body
    assert len(fake.api_requests()) == 2
    assert elapsed >= 0.9, "the retry must wait the Retry-After the upstream asked for"
    assert len(set(output_files(server)) - before) == 2  # image + metadata sidecar


@pytest.mark.anyio
async def test_429_with_retry_after_beyond_deadline_fails_fast(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.fault_429, fake.retry_after = 1.0, "30"
    before = output_files(server)
    code, body, elapsed = await call(server)
    assert code == "rate_limited"
    assert body["error"]["retryable"] is True
    assert body["error"]["retry_after_seconds"] == 30
    assert len(fake.api_requests()) == 1, "waiting 30 s cannot fit in a 6 s deadline: no retry"
    assert elapsed < 3
    assert output_files(server) == before


@pytest.mark.anyio
async def test_429_without_retry_after_backs_off_then_gives_up(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.script(*(error_reply(429, "Too many requests", "rate_limit_exceeded") for _ in range(3)))
    before = output_files(server)
    code, body, _ = await call(server)
    assert code == "rate_limited"
    assert "retry_after_seconds" not in body["error"]
    assert len(fake.api_requests()) == 3  # IMAGEGEN_UPSTREAM_MAX_ATTEMPTS
    assert output_files(server) == before


@pytest.mark.anyio
async def test_429_without_retry_after_once_then_success(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.script(error_reply(429, "Too many requests", "rate_limit_exceeded"))
    code, body, _ = await call(server)
    assert code is None, body
    assert len(fake.api_requests()) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retried_then_upstream_error(fake: FakeOpenAI, server: ServerHandle, status: int) -> None:
    fake.script(*(error_reply(status, "The server had an error", None) for _ in range(3)))
    before = output_files(server)
    code, body, _ = await call(server)
    assert code == "upstream_error"
    assert body["error"]["details"]["upstream_status"] == status
    assert len(fake.api_requests()) == 3
    assert output_files(server) == before


@pytest.mark.anyio
async def test_5xx_once_then_success(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.script(error_reply(500, "The server had an error", None))
    code, body, _ = await call(server)
    assert code is None, body
    assert len(fake.api_requests()) == 2


@pytest.mark.anyio
async def test_upstream_timeout_per_attempt_ends_as_upstream_timeout(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.fault_timeout, fake.timeout_hang = 1.0, 10.0
    before = output_files(server)
    code, body, elapsed = await call(server)
    assert code == "upstream_timeout"
    assert body["error"]["retryable"] is True
    assert 1.4 <= elapsed, "each attempt waits IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS=1.5"
    assert len(fake.api_requests()) >= 2, "a timed-out attempt is retried while the deadline allows"
    assert output_files(server) == before


@pytest.mark.anyio
async def test_request_deadline_caps_a_slow_upstream() -> None:
    """Per-attempt timeout longer than the whole deadline: the deadline wins."""
    with (
        start_fake_openai(fault_timeout=1.0, timeout_hang=15.0) as (base_url, fake),
        start_server(
            openai_env(base_url, IMAGEGEN_REQUEST_DEADLINE_SECONDS="2", IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="60")
        ) as handle,
    ):
        started = time.monotonic()
        async with mcp_client(handle.mcp_url) as client:
            result = await generate(client)
        elapsed = time.monotonic() - started
        assert error_code(result) == "upstream_timeout"
        assert elapsed < 2 + SLACK
        assert len(fake.api_requests()) == 1
        assert output_files(handle) == []


@pytest.mark.anyio
async def test_connection_reset_is_upstream_error() -> None:
    with raw_upstream("reset") as upstream, start_server(openai_env(upstream.base_url)) as handle:
        started = time.monotonic()
        async with mcp_client(handle.mcp_url) as client:
            result = await generate(client)
        assert error_code(result) == "upstream_error", result.structured_content
        assert "could not talk to OpenAI" in result.structured_content["error"]["message"]
        assert upstream.events.count("reset") == 3, "a reset is retried like any transport failure"
        assert time.monotonic() - started < DEADLINE + SLACK
        assert output_files(handle) == []


# A garbled body may be a transient proxy fault (retried); a well-formed answer without an image is final.
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "message", "attempts"),
    [
        (Reply(body=b'{"created": 1, "data": [', content_type="application/json"), "malformed JSON", 3),
        (Reply(body=b"<html>gateway</html>", content_type="text/html"), "malformed JSON", 3),
        (Reply(json=["not", "an", "object"]), "unexpected JSON shape", 3),
        (Reply(json={"created": 1, "data": []}), "returned no image", 1),
        (Reply(json={"created": 1}), "returned no image", 1),
        (Reply(json={"created": 1, "data": [{"revised_prompt": "x"}]}), "returned no image", 1),
        (Reply(json={"created": 1, "data": [{"b64_json": "%%%not base64%%%"}]}), "not valid base64", 1),
        (Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(b"GIF? no").decode()}]}), "not an image", 1),
    ],
    ids=["truncated-json", "html", "json-array", "empty-data", "no-data", "no-image-field", "bad-base64", "not-image"],
)
async def test_malformed_or_imageless_answers_are_upstream_error(
    fake: FakeOpenAI, server: ServerHandle, reply: Reply, message: str, attempts: int
) -> None:
    fake.script(*[reply] * attempts)
    before = output_files(server)
    code, body, _ = await call(server)
    assert code == "upstream_error"
    assert message in body["error"]["message"]
    assert len(fake.api_requests()) == attempts
    assert output_files(server) == before


@pytest.mark.anyio
async def test_malformed_json_once_then_success(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.script(Reply(body=b'{"created": 1, "data": [', content_type="application/json"))
    code, body, _ = await call(server)
    assert code is None, body
    assert len(fake.api_requests()) == 2


@pytest.mark.anyio
async def test_content_refusal_is_content_blocked_and_not_retried(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.script(error_reply(400, "Your request was rejected as a result of our safety system.", "moderation_blocked"))
    before = output_files(server)
    code, body, elapsed = await call(server)
    assert code == "content_blocked"
    assert body["error"]["retryable"] is False
    assert body["error"]["details"]["upstream_code"] == "moderation_blocked"
    assert len(fake.api_requests()) == 1
    assert elapsed < 3
    assert output_files(server) == before


@pytest.mark.anyio
async def test_a_success_after_faults_still_stores_exactly_one_image(fake: FakeOpenAI, server: ServerHandle) -> None:
    fake.script(error_reply(503, "busy", None), Reply(json=ok_body()))
    before = set(output_files(server))
    code, body, _ = await call(server)
    assert code is None, body
    image_id = body["images"][0]["id"]
    new = set(output_files(server)) - before
    assert {p.name for p in new} == {image_id, f"{image_id}.json"}


def test_assert_success_helper_rejects_errors() -> None:
    """The helper the other modules rely on must fail on an error result."""
    from mcp.types import CallToolResult, TextContent

    failed = CallToolResult(
        content=[TextContent(type="text", text="x")],
        structured_content={"images": [], "error": {"code": "upstream_error", "message": "m", "retryable": True}},
        is_error=True,
    )
    with pytest.raises(AssertionError):
        assert_success(failed)
    assert error_code(failed) == "upstream_error"
