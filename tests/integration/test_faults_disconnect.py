"""A client that hangs up mid-call cancels the upstream request, stores nothing, and leaves the server healthy."""

from __future__ import annotations

import time

import anyio
import pytest

from tests.integration.reliability_support import (
    assert_success,
    generate,
    mcp_client,
    openai_env,
    output_files,
    raw_upstream,
    tool_call_lines,
    wait_for,
)
from tests.support.servers import start_server

UPSTREAM_DELAY = 4.0


@pytest.mark.anyio
async def test_disconnect_cancels_upstream_and_stores_nothing() -> None:
    env = openai_env("", IMAGEGEN_REQUEST_DEADLINE_SECONDS="30", IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="20")
    with raw_upstream("slow", delay=UPSTREAM_DELAY) as upstream:
        env["IMAGEGEN_OPENAI_BASE_URL"] = upstream.base_url
        with start_server(env) as handle:

            async def doomed_call() -> None:
                async with mcp_client(handle.mcp_url) as client:
                    await generate(client, "a very slow painting")

            async with anyio.create_task_group() as group:
                group.start_soon(doomed_call)
                assert await anyio.to_thread.run_sync(upstream.received.wait, 10.0), "upstream never called"
                hung_up_at = time.monotonic()
                group.cancel_scope.cancel()  # closes the client's HTTP connection mid-response

            # The server notices the disconnect and cancels its upstream request long before the upstream answers.
            assert await anyio.to_thread.run_sync(wait_for, lambda: bool(upstream.events), UPSTREAM_DELAY - 1)
            assert upstream.events == ["client_closed"]
            assert time.monotonic() - hung_up_at < UPSTREAM_DELAY - 1

            await anyio.sleep(UPSTREAM_DELAY)  # past the moment the upstream would have answered
            assert output_files(handle) == [], "a cancelled call must not store an image"
            [line] = tool_call_lines(handle)
            assert line["outcome"] == "cancelled"

            # The server is unharmed: the next call (upstream answering at once) succeeds.
            upstream.delay = 0.0
            async with mcp_client(handle.mcp_url) as client:
                assert_success(await generate(client, "a quick sketch"))
            assert upstream.events == ["client_closed", "answered"]
