"""Jobs over real HTTP with the official client: running → get_job, cancel_job, ownership, hang-ups."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from mcp.types import CallToolResult

from imagegen_mcp.access.keys import create_api_key
from tests.integration.reliability_support import (
    assert_success,
    mcp_client,
    openai_env,
    output_files,
    raw_upstream,
    wait_for,
)
from tests.support.servers import start_server

pytestmark = pytest.mark.anyio
UPSTREAM_DELAY = 4.0


def _env(base_url: str, **extra: str) -> dict[str, str]:
    return openai_env(base_url, IMAGEGEN_REQUEST_DEADLINE_SECONDS="60", IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="30", **extra)


def _structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result.content
    return result.structured_content


def _text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_slow_generation_returns_running_then_get_job_returns_images() -> None:
    first, first_record = create_api_key("first")
    second, second_record = create_api_key("second")
    keys = json.dumps({"keys": [first_record.to_json(), second_record.to_json()]})
    with raw_upstream("slow", delay=UPSTREAM_DELAY) as upstream:
        env = _env(upstream.base_url, IMAGEGEN_AUTH="bearer", IMAGEGEN_API_KEYS=keys)
        with start_server(env) as handle:
            owner = {"Authorization": f"Bearer {first}"}
            async with mcp_client(handle.mcp_url, headers=owner) as client:
                progress: list[str | None] = []

                async def on_progress(step: float, total: float | None, message: str | None) -> None:
                    progress.append(message)

                started = await client.call_tool(
                    "generate_image", {"prompt": "a slow lighthouse", "wait_seconds": 1}, progress_callback=on_progress
                )
                assert not started.is_error, started.content
                body = _structured(started)
                assert body["status"] in ("queued", "running")
                job_id = body["job_id"]
                assert job_id.startswith("job_") and body["images"] == []
                assert body["poll_after_seconds"] > 0 and body["progress"]
                assert "get_job" in _text(started) and job_id in _text(started)
                assert progress, "the wait sends progress notifications"

                # Another caller learns nothing about the job, not even that it exists.
                async with mcp_client(handle.mcp_url, headers={"Authorization": f"Bearer {second}"}) as other:
                    for tool, args in (("get_job", {"job_id": job_id}), ("cancel_job", {"job_id": job_id})):
                        denied = await other.call_tool(tool, args)
                        assert denied.is_error and _structured(denied)["error"]["code"] == "not_found"
                        assert "slow lighthouse" not in json.dumps(_structured(denied))

                done = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 30})
                result = assert_success(done)
                assert result["status"] == "succeeded" and result["job_id"] == job_id
                assert result["model"] and result["provider"] == "openai" and result["operation"] == "generate"
                image = result["images"][0]
                fetched = httpx2.get(image["url"])
                assert fetched.status_code == 200 and fetched.content[:4] == b"\x89PNG"
                assert any(getattr(c, "uri", None) == image["url"] for c in done.content)

                # Reading it again re-signs the links; cancelling a finished job is a no-op that says so.
                again = assert_success(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0}))
                assert again["images"][0]["id"] == image["id"]
                assert httpx2.get(again["images"][0]["url"]).status_code == 200
                noop = await client.call_tool("cancel_job", {"job_id": job_id})
                assert not noop.is_error and _structured(noop)["status"] == "succeeded"
                assert "already ended" in _text(noop)
            assert upstream.events == ["answered"], "the upstream was called exactly once"


async def test_cancel_job_abandons_the_upstream_request_and_stores_nothing() -> None:
    with raw_upstream("slow", delay=UPSTREAM_DELAY + 4) as upstream:
        with start_server(_env(upstream.base_url)) as handle:
            async with mcp_client(handle.mcp_url) as client:
                started = await client.call_tool("generate_image", {"prompt": "never finished", "wait_seconds": 0})
                job_id = _structured(started)["job_id"]
                assert await anyio.to_thread.run_sync(upstream.received.wait, 10.0), "upstream never called"
                cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
                assert not cancelled.is_error and _structured(cancelled)["status"] == "cancelled"
                assert "cancelled" in _text(cancelled)
                assert await anyio.to_thread.run_sync(wait_for, lambda: bool(upstream.events), UPSTREAM_DELAY)
                assert upstream.events == ["client_closed"], "the upstream request is abandoned"
                await anyio.sleep(UPSTREAM_DELAY + 1)
                assert output_files(handle) == [], "a cancelled job stores nothing"
                later = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0})
                assert not later.is_error and _structured(later)["status"] == "cancelled"
                assert _structured(later)["images"] == []
