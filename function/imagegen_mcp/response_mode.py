"""Which of the SDK's two response modes answers a POST to /mcp: one JSON body, or an SSE stream if it may be needed."""

from __future__ import annotations

from mcp.server.streamable_http import check_accept_headers
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.types import Scope

# A request naming any of these keeps the stream. A progress token: the client wants the notifications, which only
# a stream carries. An explicit wait: the call may run for minutes, so it streams from the start (a JSON answer
# that turns out late becomes a stream too: late_answer). A JSON `\u` escape could spell either name, so any
# escaped text keeps the stream too (it only costs the cheaper mode).
STREAM_MARKERS = (b"progressToken", b"wait_seconds", b"\\u")
# Above this default wait, a call without an explicit one could also run too long for a silent response.
JSON_MAX_DEFAULT_WAIT_SECONDS = 60.0


def wants_stream(scope: Scope, body: bytes, default_wait_seconds: float) -> bool:
    """True: answer with the SSE stream (as before); False: a single JSON body is enough, and costs less.

    A client that does not accept both types gets the stream mode, which refuses it (406) as it always did.
    Requests of the handshake-less protocol revisions keep it too: there the SDK's stream mode already answers
    with one JSON body when the call ends within its ping interval without a notification, and streams otherwise.
    """
    if default_wait_seconds > JSON_MAX_DEFAULT_WAIT_SECONDS:
        return True
    request = Request(scope)
    revision = request.headers.get("mcp-protocol-version")
    if revision is not None and revision not in HANDSHAKE_PROTOCOL_VERSIONS:
        return True
    has_json, has_sse = check_accept_headers(request)
    if not (has_json and has_sse):
        return True
    return any(marker in body for marker in STREAM_MARKERS)
