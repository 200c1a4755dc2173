"""Property-based fuzzing of raw HTTP bodies and headers POSTed to /mcp: never a 500, a hang, or a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.reliability_support import (
    MCP_HEADERS,
    TYPED_CODES,
    assert_no_leak_in,
    error_log_lines,
    fuzz_server_fixture,  # noqa: F401 (the `server` fixture)
    json_values,
    jsonrpc_messages,
    post_tools_call,
)
from tests.support.servers import ServerHandle

FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
HTTP_TIMEOUT = 20.0

METHODS = [
    "initialize",
    "notifications/initialized",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/cancelled",
]
PROTOCOL_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "1999-01-01", "", "x" * 300]

request_ids = st.one_of(st.integers(), st.text(max_size=20), st.none(), st.floats(allow_nan=False), json_values)
params = json_values | st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["generate_image", "edit_image", "list_models", "basic", "detailed"])
        | st.text(max_size=20),
        "arguments": json_values,
        "uri": st.sampled_from(["imagegen://models", "file:///etc/passwd", ""]) | st.text(max_size=30),
        "protocolVersion": st.sampled_from(PROTOCOL_VERSIONS),
        "capabilities": json_values,
        "clientInfo": json_values,
        "_meta": json_values,
        "level": st.text(max_size=10),
    },
)
# Mostly well-formed envelopes (so the fuzz reaches method dispatch), sometimes anything in every field.
well_formed = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "id": st.integers(0, 2**31), "method": st.sampled_from(METHODS), "params": params}
)
messages = st.one_of(
    well_formed,
    well_formed,
    st.fixed_dictionaries(
        {"method": st.sampled_from(METHODS) | st.text(max_size=30)},
        optional={
            "jsonrpc": st.sampled_from(["2.0", "1.0", ""]) | json_values,
            "id": request_ids,
            "params": params,
        },
    ),
)
json_bodies = st.one_of(
    messages.map(json.dumps),
    st.lists(messages, max_size=4).map(json.dumps),  # batches
    json_values.map(json.dumps),
).map(str.encode)
raw_bodies = st.one_of(
    json_bodies,
    json_bodies.map(lambda b: b[: len(b) // 2]),  # truncated JSON
    st.binary(max_size=512),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Accept": st.sampled_from(
            ["application/json, text/event-stream", "application/json", "text/event-stream", "*/*", "text/html", ""]
        ),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", ""]),
        "MCP-Protocol-Version": st.sampled_from(PROTOCOL_VERSIONS),
        "Mcp-Session-Id": st.sampled_from(["", "abc", "0" * 64]),
        "X-Cloud-Trace-Context": st.sampled_from(
            ["", "zz/1;o=1", "0" * 32 + "/9" * 40, "105445aa7843bc8bf206b120001000/1;o=1"]
        ),
    },
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=HTTP_TIMEOUT) as client:
        yield client


def check(response: httpx2.Response) -> None:
    assert_no_leak_in(response)
    try:
        found = jsonrpc_messages(response)
    except ValueError:
        found = []  # a non-JSON error page from a guard (e.g. 406/415 text) is fine as long as it is not a 500
    for message in found:
        if not isinstance(message, dict):
            continue
        error = ((message.get("result") or {}).get("structuredContent") or {}).get("error")
        if isinstance(error, dict):
            assert error.get("code") in TYPED_CODES and error.get("code") != "internal", error


@FUZZ
@given(body=raw_bodies)
def test_fuzz_raw_bodies_with_mcp_headers(server: ServerHandle, http: httpx2.Client, body: bytes) -> None:
    response = http.post(server.mcp_url, content=body, headers=MCP_HEADERS)
    event(f"HTTP {response.status_code}")
    check(response)


@FUZZ
@given(body=json_bodies, extra=headers)
def test_fuzz_json_rpc_with_fuzzed_headers(
    server: ServerHandle, http: httpx2.Client, body: bytes, extra: dict[str, Any]
) -> None:
    response = http.post(server.mcp_url, content=body, headers=extra)
    event(f"HTTP {response.status_code}")
    check(response)


def test_server_still_answers_after_fuzzing(server: ServerHandle, http: httpx2.Client) -> None:
    _, response = post_tools_call(http, server.mcp_url, "list_models", {}, headers=MCP_HEADERS)
    [message] = jsonrpc_messages(response)
    assert message["result"]["structuredContent"]["default_model"] == "openai/gpt-image-1"


@pytest.mark.parametrize(
    "params",
    [{"name": "no-such-prompt"}, {"name": "detailed", "arguments": {}}, {"name": "basic", "arguments": {"x": "y"}}],
)
def test_bad_prompt_requests_are_invalid_params_not_server_errors(
    server: ServerHandle, http: httpx2.Client, params: dict[str, Any]
) -> None:
    """Found by the fuzzer: the SDK logged these as ERRORs with a stack trace and answered with code 0."""
    response = http.post(
        server.mcp_url, json={"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": params}, headers=MCP_HEADERS
    )
    assert_no_leak_in(response)
    [message] = jsonrpc_messages(response)
    assert message["error"]["code"] == -32602
    assert error_log_lines(server) == []


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("resources/read", {"uri": "imagegen://no-such-resource"}),
        ("tools/call", {"name": "no-such-tool", "arguments": {}}),
        ("tools/call", {"name": "generate_image", "arguments": {"prompt": 7}}),
        ("prompts/get", {"name": "no-such-prompt"}),
    ],
)
def test_request_methods_sent_as_notifications_are_dropped_quietly(
    server: ServerHandle, http: httpx2.Client, method: str, params: dict[str, Any]
) -> None:
    """Found by the fuzzer: a request method without an id (a notification) went through the request checks, whose
    refusal had no one to answer and was logged as an ERROR with a stack trace."""
    response = http.post(
        server.mcp_url, json={"jsonrpc": "2.0", "method": method, "params": params}, headers=MCP_HEADERS
    )
    assert response.status_code == 202, response.text
    # The notification is handled after its 202: a request answered after it means its log lines are written.
    _, after = post_tools_call(http, server.mcp_url, "list_models", {}, headers=MCP_HEADERS)
    assert after.status_code == 200
    assert error_log_lines(server) == []
