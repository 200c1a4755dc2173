"""A client that hangs up mid-call leaves its job running (stored for a later get_job) and the server healthy."""

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
async def test_disconnect_leaves_the_job_running_and_the_server_healthy() -> None:
    env = openai_env("", IMAGEGEN_REQUEST_DEADLINE_SECONDS="30", IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="20")
    with raw_upstream("slow", delay=UPSTREAM_DELAY) as upstream:
        env["IMAGEGEN_OPENAI_BASE_URL"] = upstream.base_url
        with start_server(env) as handle:

            async def doomed_call() -> None:
                async with mcp_client(handle.mcp_url) as client:
                    await generate(client, "a very slow painting", wait_seconds=60)

            async with anyio.create_task_group() as group:
                group.start_soon(doomed_call)
                assert await anyio.to_thread.run_sync(upstream.received.wait, 10.0), "upstream never called"
                hung_up_at = time.monotonic()
                group.cancel_scope.cancel()  # closes the client's HTTP connection mid-response

            # The generation is a job: it outlives the call, so the upstream answers and the image is stored.
            assert await anyio.to_thread.run_sync(wait_for, lambda: bool(upstream.events), UPSTREAM_DELAY + 5)
            assert upstream.events == ["answered"]
            assert upstream.answered_at[0] > hung_up_at, "the upstream answered after the client had gone"
            assert await anyio.to_thread.run_sync(wait_for, lambda: len(output_files(handle)) > 0, 10.0)
            assert await anyio.to_thread.run_sync(wait_for, lambda: len(tool_call_lines(handle)) == 1, 10.0)
            [line] = tool_call_lines(handle)
            assert line["outcome"] == "cancelled"  # the call (not the job) ended when the client left

            # The server is unharmed: the next call (upstream answering at once) succeeds.
            upstream.delay = 0.0
            async with mcp_client(handle.mcp_url) as client:
                assert_success(await generate(client, "a quick sketch"))
            assert upstream.events == ["answered", "answered"]
