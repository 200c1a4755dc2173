"""Protocol details over real HTTP: one X-Request-Id per response on both protocol paths, quiet disconnects."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.support.servers import ServerHandle, start_server

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "raw-http", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ServerHandle]:
    with start_server({"IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0"}) as handle:  # more calls than a minute's default
        yield handle


def _streamed_call(endpoint: ServerHandle, revision: str, call_id: int) -> httpx2.Response:
    """A generate_image call asking for progress, so the answer is an SSE stream on either path."""
    params: dict[str, Any] = {
        "name": "generate_image",
        "arguments": {"prompt": f"call {call_id}"},
        "_meta": {"progressToken": call_id},
    }
    headers = {**ACCEPT, "MCP-Protocol-Version": revision}
    if revision == "2026-07-28":
        params["_meta"].update(MODERN_META)
        headers.update({"Mcp-Method": "tools/call", "Mcp-Name": "generate_image"})
    body = {"jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": params}
    return httpx2.post(endpoint.mcp_url, content=json.dumps(body), headers=headers, timeout=60)


@pytest.mark.parametrize("revision", ["2025-11-25", "2026-07-28"])
def test_one_request_id_per_response(endpoint: ServerHandle, revision: str) -> None:
    seen: list[str] = []
    for call_id in range(1, 5):
        response = _streamed_call(endpoint, revision, call_id)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        assert '"isError":false' in response.text.replace(" ", "")
        ids = response.headers.get_list("x-request-id")
        assert len(ids) == 1, f"response {call_id} carries {len(ids)} request ids: {ids}"
        seen.append(ids[0])
    assert len(set(seen)) == len(seen)


def _call(
    endpoint: ServerHandle,
    revision: str,
    arguments: dict[str, Any],
    meta: dict[str, Any] | None = None,
    accept: str = ACCEPT["Accept"],
) -> httpx2.Response:
    params: dict[str, Any] = {"name": "generate_image", "arguments": {"prompt": "a plain call", **arguments}}
    headers = {**ACCEPT, "Accept": accept, "MCP-Protocol-Version": revision}
    if meta is not None or revision == "2026-07-28":
        params["_meta"] = dict(meta or {})
    if revision == "2026-07-28":
        params["_meta"].update(MODERN_META)
        headers.update({"Mcp-Method": "tools/call", "Mcp-Name": "generate_image"})
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params}
    return httpx2.post(endpoint.mcp_url, content=json.dumps(body), headers=headers, timeout=60)


@pytest.mark.parametrize("revision", ["2025-11-25", "2026-07-28"])  # the latter: the SDK's own choice, the same
def test_a_call_without_progress_is_answered_with_one_json_body(endpoint: ServerHandle, revision: str) -> None:
    response = _call(endpoint, revision, {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()
    assert message["id"] == 9 and message["result"]["isError"] is False
    assert message["result"]["structuredContent"]["images"][0]["id"]
    assert len(response.headers.get_list("x-request-id")) == 1


def test_progress_and_an_explicit_wait_keep_the_stream(endpoint: ServerHandle) -> None:
    streamed = _call(endpoint, "2025-11-25", {}, meta={"progressToken": "p-1"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert '"method":"notifications/progress"' in streamed.text.replace(" ", "")
    waited = _call(endpoint, "2025-11-25", {"wait_seconds": 30})
    assert waited.headers["content-type"].startswith("text/event-stream")
    for response in (streamed, waited):
        assert response.status_code == 200 and '"isError":false' in response.text.replace(" ", "")


def test_a_client_that_does_not_accept_the_stream_is_still_refused(endpoint: ServerHandle) -> None:
    """As before the JSON mode existed: the transport requires both types in Accept (406 otherwise)."""
    response = _call(endpoint, "2025-11-25", {}, accept="application/json")
    assert response.status_code == 406, response.text


def test_trailing_slash_path_is_the_same_endpoint(endpoint: ServerHandle) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {**ACCEPT, "MCP-Protocol-Version": "2025-11-25"}
    response = httpx2.post(f"{endpoint.mcp_url}/", content=json.dumps(body), headers=headers, timeout=30)
    assert response.status_code == 200 and '"result":{}' in response.text.replace(" ", "")


def _hang_up_mid_body(endpoint: ServerHandle) -> None:
    host, port = endpoint.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n"
            "Content-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":')
        time.sleep(0.2)  # the server is now waiting for the rest of the body


def test_client_disconnect_mid_body_is_one_info_line() -> None:
    hangups = 5
    with start_server({}) as handle:
        for _ in range(hangups):
            _hang_up_mid_body(handle)
        assert httpx2.get(f"{handle.base_url}/healthz", timeout=10).status_code == 200
        time.sleep(0.5)
        lines = [json.loads(line) for line in handle.logs().splitlines() if line.startswith("{")]
        noisy = [line for line in handle.logs().splitlines() if "Traceback" in line]
    assert noisy == [], "a client hanging up mid-body must not log a stack trace"
    assert [line for line in lines if line.get("severity") in ("ERROR", "CRITICAL")] == []
    disconnects = [line for line in lines if "disconnected" in line.get("message", "")]
    assert len(disconnects) == hangups and {line["severity"] for line in disconnects} == {"INFO"}


@pytest.mark.timeout(120)
def test_a_plain_call_that_runs_past_the_ping_interval_is_streamed_with_keep_alives() -> None:
    """No progress token, the default wait: a JSON answer, but one not begun within PING_SECONDS turns into an SSE
    stream with keep-alive comments (a silent response would be cut by an idle timeout on the way)."""
    from imagegen_mcp.late_answer import PING_SECONDS
    from tests.integration.reliability_support import jsonrpc_messages, openai_env, raw_upstream

    with raw_upstream("slow", delay=PING_SECONDS + 3) as upstream:
        env = openai_env(
            upstream.base_url, IMAGEGEN_REQUEST_DEADLINE_SECONDS="60", IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS="40"
        )
        with start_server(env) as handle:
            response = _call(handle, "2025-11-25", {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert ": ping" in response.text and len(response.headers.get_list("x-request-id")) == 1
    messages = jsonrpc_messages(response)
    assert len(messages) == 1 and messages[0]["id"] == 9
    assert messages[0]["result"]["isError"] is False and messages[0]["result"]["structuredContent"]["images"]
