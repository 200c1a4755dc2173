"""Job tools in-process: a call refused outright leaves no job; a finished call carries its job id and status."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from mcp import Client

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.deps import build_deps
from imagegen_mcp.server import build_server

pytestmark = pytest.mark.anyio


def _jobs(settings: Any) -> int:
    with sqlite3.connect(settings.state_file) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM documents WHERE collection = 'jobs'").fetchone()[0])


async def test_refused_calls_create_no_job_and_finished_ones_carry_their_job(make_settings: Any) -> None:
    settings = make_settings()
    server = build_server(build_deps(settings), in_process_caller=Caller(id="in-process-test", kind="none"))
    async with Client(server) as client:
        for args in (
            {"prompt": "   "},
            {"prompt": "x", "model": "no/such-model"},
            {"prompt": "x", "background": "transparent", "model": "local/placeholder", "n": 4, "seed": -1},
        ):
            refused = await client.call_tool("generate_image", args)
            assert refused.is_error and "job_id" not in (refused.structured_content or {}), args
        masked = await client.call_tool("edit_image", {"prompt": "x", "images": ["not-an-image"], "n": 9})
        assert masked.is_error
        assert _jobs(settings) == 0
        done = await client.call_tool("generate_image", {"prompt": "a kept job"})
        body = done.structured_content or {}
        assert not done.is_error and body["status"] == "succeeded" and body["job_id"].startswith("job_")
        assert _jobs(settings) == 1
        again = await client.call_tool("get_job", {"job_id": body["job_id"], "wait_seconds": 0})
        assert (again.structured_content or {})["images"][0]["id"] == body["images"][0]["id"]
        unknown = await client.call_tool("get_job", {"job_id": "job_0000", "wait_seconds": 0})
        assert unknown.is_error and (unknown.structured_content or {})["error"]["code"] == "not_found"


async def test_a_call_too_large_for_a_job_record_is_refused_typed_and_leaves_no_job(make_settings: Any) -> None:
    settings = make_settings()
    deps = build_deps(settings)
    deps.state.max_document_bytes = 4096  # a small backend limit (Firestore's is 1 MB)
    server = build_server(deps, in_process_caller=Caller(id="in-process-test", kind="none"))
    async with Client(server) as client:
        refused = await client.call_tool("generate_image", {"prompt": "a long prompt " * 400})
        error = (refused.structured_content or {})["error"]
        assert refused.is_error and error["code"] == "invalid_argument"
        assert "more than a job record holds here (4096)" in error["message"]
        assert _jobs(settings) == 0
        done = await client.call_tool("generate_image", {"prompt": "a short prompt"})
        assert not done.is_error and _jobs(settings) == 1
