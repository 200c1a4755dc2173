"""SIGTERM (what Cloud Run sends before stopping an instance): stop accepting, drain in-flight calls, exit in grace."""

from __future__ import annotations

import signal
import socket
import time

import anyio
import pytest
from mcp.types import CallToolResult

from tests.fakes.openai_server import FakeOpenAI, start_fake_openai
from tests.integration.reliability_support import (
    assert_success,
    generate,
    mcp_client,
    openai_env,
    output_files,
    wait_for,
)
from tests.support.servers import ServerHandle, start_server

IN_FLIGHT = 4
UPSTREAM_DELAY = 2.0
# Grace each entry applies: `imagegen-mcp serve` passes IMAGEGEN_SHUTDOWN_GRACE_SECONDS to uvicorn; the test
# launcher's plain uvicorn passes --timeout-graceful-shutdown 20; functions-framework runs gunicorn, whose
# graceful_timeout (30 s) cannot be set from the function (Cloud Run kills 10 s after SIGTERM anyway).
GRACE = {"cli": 5.0, "uvicorn": 20.0, "functions-framework": 30.0}
HANG = 30.0  # how long past its grace a server may take to exit before the test calls it hung (not a speed target)
OUTLASTING_DELAY = 30.0  # upstream answer time for calls that outlast the grace period


def connection_refused(handle: ServerHandle) -> bool:
    port = int(handle.base_url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


async def calls_across_sigterm(
    handle: ServerHandle, fake: FakeOpenAI, outcomes: list[CallToolResult | BaseException]
) -> float:
    """Start IN_FLIGHT calls, SIGTERM the server once the upstream holds all of them; returns when SIGTERM went."""

    async def one(index: int) -> None:
        try:
            async with mcp_client(handle.mcp_url) as client:
                await client.list_tools()  # the client validates results against cached schemas; prime it now
                outcomes.append(await generate(client, f"drain test {index}"))
        except Exception as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as group:
        for index in range(IN_FLIGHT):
            group.start_soon(one, index)
        held = await anyio.to_thread.run_sync(wait_for, lambda: len(fake.api_requests()) >= IN_FLIGHT, 10.0)
        assert held, "the calls never reached the upstream"
        handle.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        refused = await anyio.to_thread.run_sync(wait_for, lambda: connection_refused(handle), 1.5)
        assert refused, "new connections must be refused once SIGTERM arrived"
        assert handle.process.poll() is None, "the server must not exit while calls are in flight"
    return sent


@pytest.mark.anyio
@pytest.mark.parametrize("entry", ["cli", "uvicorn", "functions-framework"])
async def test_sigterm_drains_in_flight_generations(entry: str) -> None:
    outcomes: list[CallToolResult | BaseException] = []
    with (
        start_fake_openai(delay=UPSTREAM_DELAY) as (base_url, fake),
        start_server(
            openai_env(
                base_url,
                IMAGEGEN_SHUTDOWN_GRACE_SECONDS=str(GRACE["cli"]),
                IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="20",
                IMAGEGEN_REQUEST_DEADLINE_SECONDS="30",
            ),
            entry=entry,
        ) as handle,
    ):
        await calls_across_sigterm(handle, fake, outcomes)
        assert len(outcomes) == IN_FLIGHT
        for outcome in outcomes:
            assert isinstance(outcome, CallToolResult), repr(outcome)
            assert_success(outcome)
        await anyio.to_thread.run_sync(handle.process.wait, GRACE[entry] + HANG)  # a hang detector
        # Drained, so it exited by itself: the grace period never had to cancel a call.
        assert "timeout graceful shutdown exceeded" not in handle.logs()
        images = [p for p in output_files(handle) if not p.name.endswith(".json")]
        assert len(images) == IN_FLIGHT, "drained calls are stored completely"


@pytest.mark.anyio
async def test_sigterm_exits_within_the_grace_period_when_calls_outlast_it() -> None:
    grace = 2.0
    outcomes: list[CallToolResult | BaseException] = []
    with (
        start_fake_openai(delay=OUTLASTING_DELAY) as (base_url, fake),
        start_server(
            openai_env(
                base_url,
                IMAGEGEN_SHUTDOWN_GRACE_SECONDS=str(grace),
                IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="60",
                IMAGEGEN_REQUEST_DEADLINE_SECONDS="60",
            ),
            entry="cli",
        ) as handle,
    ):
        sent = await calls_across_sigterm(handle, fake, outcomes)
        await anyio.to_thread.run_sync(handle.process.wait, OUTLASTING_DELAY)
        exited_after = time.monotonic() - sent
        # Gone while the upstream still held every call: it did not wait for them past its grace period.
        assert fake.replies_made == 0, f"exited {exited_after:.1f}s after SIGTERM, after the upstream answered"
        assert exited_after >= grace - 0.5, "in-flight calls get the whole grace period"
        assert len(outcomes) == IN_FLIGHT
        assert all(not isinstance(o, CallToolResult) or o.is_error for o in outcomes), "nothing could finish"
        assert [p for p in output_files(handle) if not p.name.endswith(".json")] == []
