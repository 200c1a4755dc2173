"""response_mode.wants_stream: one JSON body only when nothing in the request may need the SSE stream."""

from __future__ import annotations

import json

import pytest

from imagegen_mcp.response_mode import JSON_MAX_DEFAULT_WAIT_SECONDS, wants_stream

BOTH = "application/json, text/event-stream"


def scope(accept: str | None, revision: str | None = None) -> dict[str, object]:
    headers = [] if accept is None else [(b"accept", accept.encode("latin-1"))]
    if revision is not None:
        headers.append((b"mcp-protocol-version", revision.encode("latin-1")))
    return {"type": "http", "method": "POST", "path": "/mcp", "headers": headers, "query_string": b""}


def call(arguments: dict[str, object] | None = None, meta: dict[str, object] | None = None) -> bytes:
    params: dict[str, object] = {"name": "generate_image", "arguments": {"prompt": "a lighthouse", **(arguments or {})}}
    if meta is not None:
        params["_meta"] = meta
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()


@pytest.mark.parametrize("accept", [BOTH, "text/event-stream, application/json", "*/*", "application/*, text/*"])
@pytest.mark.parametrize("revision", [None, "2025-06-18", "2025-11-25"])
def test_a_plain_call_from_a_client_that_takes_both_gets_json(accept: str, revision: str | None) -> None:
    assert wants_stream(scope(accept, revision), call(), 40.0) is False
    assert wants_stream(scope(accept), b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}', 40.0) is False


@pytest.mark.parametrize(
    "body",
    [
        call(meta={"progressToken": 7}),
        call(arguments={"wait_seconds": 200}),
        call(arguments={"prompt": "café"}),  # json.dumps escapes it; escaped text could spell either name
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progress\\u0054oken":1}}}',
    ],
    ids=["progress token", "explicit wait", "escaped text", "escaped progress token"],
)
def test_a_call_that_may_need_the_stream_keeps_it(body: bytes) -> None:
    assert wants_stream(scope(BOTH), body, 40.0) is True


@pytest.mark.parametrize("accept", [None, "application/json", "text/event-stream", "text/html"])
def test_a_client_that_does_not_take_both_goes_to_the_stream_mode_which_refuses_it(accept: str | None) -> None:
    assert wants_stream(scope(accept), call(), 40.0) is True


def test_a_long_default_wait_keeps_the_stream_for_every_call() -> None:
    assert wants_stream(scope(BOTH), call(), JSON_MAX_DEFAULT_WAIT_SECONDS) is False
    assert wants_stream(scope(BOTH), call(), JSON_MAX_DEFAULT_WAIT_SECONDS + 1) is True


@pytest.mark.parametrize("revision", ["2026-07-28", "2099-01-01", "garbage"])
def test_requests_of_the_modern_revisions_go_to_the_stream_mode_which_picks_per_call(revision: str) -> None:
    assert wants_stream(scope(BOTH, revision), call(), 40.0) is True
