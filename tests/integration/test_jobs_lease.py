"""A worker killed mid-generation (SIGKILL) leaves a job that reads `failed` after its lease, in both state backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.reliability_support import mcp_client, openai_env, raw_upstream, wait_for
from tests.support.servers import start_server

pytestmark = pytest.mark.anyio
LEASE_SECONDS = 3


@pytest.fixture(params=["sqlite", "firestore"])
def state_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"IMAGEGEN_STATE": "local", "IMAGEGEN_STATE_PATH": str(tmp_path / "state.sqlite3")}
    host = request.getfixturevalue("firestore_emulator")
    return {"IMAGEGEN_STATE": "firestore", "FIRESTORE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": "imagegen-test"}


async def test_killed_worker_leaves_a_failed_job_not_a_running_one(state_env: dict[str, str]) -> None:
    with raw_upstream("slow", delay=60.0) as upstream:
        env = openai_env(
            upstream.base_url,
            IMAGEGEN_REQUEST_DEADLINE_SECONDS="120",
            IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="90",
            IMAGEGEN_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
            **state_env,
        )
        with start_server(env) as doomed:
            async with mcp_client(doomed.mcp_url) as client:
                started = await client.call_tool("generate_image", {"prompt": "killed midway", "wait_seconds": 0})
                job_id = (started.structured_content or {})["job_id"]
                assert await anyio.to_thread.run_sync(upstream.received.wait, 10.0), "upstream never called"
                running = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0})
                assert (running.structured_content or {})["status"] == "running"
            doomed.process.kill()  # SIGKILL: no shutdown code runs, the lease is simply never renewed
            doomed.process.wait()

        with start_server(env) as survivor:
            async with mcp_client(survivor.mcp_url) as client:
                result = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 4 * LEASE_SECONDS})
        body: dict[str, Any] = result.structured_content or {}
        assert result.is_error and body["status"] == "failed", body
        assert body["error"]["code"] == "upstream_error"
        assert "not retried" in body["error"]["message"]
        # The generation reached the upstream once and is never sent again.
        assert await anyio.to_thread.run_sync(wait_for, lambda: bool(upstream.events), 5.0)
        assert upstream.events == ["client_closed"]
