"""A lean MCP client for load: one stateless JSON-RPC `tools/call` per HTTP POST, the SSE answer parsed by hand.

The official `mcp.Client` costs more CPU per call than the servers under test (it shares the 2 cores with
them), and it hides the bytes on the wire, which the result-size scenario measures.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx2

PROTOCOL_VERSION = "2025-11-25"
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": PROTOCOL_VERSION,
}


class CallFailed(RuntimeError):
    """The call did not produce a successful tool result (HTTP error, JSON-RPC error, or isError)."""


@dataclass(frozen=True)
class Answer:
    result: dict[str, Any]
    message_bytes: int  # the JSON-RPC response message as sent (the `data:` payload of the SSE event)
    seconds: float


def parse_response(body: str, content_type: str, request_id: int) -> tuple[dict[str, Any], int]:
    """The JSON-RPC response with `request_id` from a JSON or SSE body, and its size in bytes."""
    payloads = [body] if content_type.startswith("application/json") else _sse_data(body)
    for payload in payloads:
        message = json.loads(payload)
        if isinstance(message, dict) and message.get("id") == request_id:
            if "error" in message:
                raise CallFailed(f"JSON-RPC error: {message['error']}")
            return message["result"], len(payload.encode("utf-8"))
    raise CallFailed(f"no response with id {request_id} in the answer: {body[:300]!r}")


def _sse_data(body: str) -> list[str]:
    events: list[str] = []
    lines: list[str] = []
    for line in body.splitlines():
        if line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
        elif not line.strip() and lines:
            events.append("\n".join(lines))
            lines = []
    if lines:
        events.append("\n".join(lines))
    return events


class McpHttp:
    """Calls tools on one MCP endpoint over a pooled HTTP/1.1 client (enough connections for every caller)."""

    def __init__(self, url: str, *, connections: int = 256, timeout: float = 120.0) -> None:
        self.url = url
        self._ids = itertools.count(1)
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeout, connect=10.0),
            limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections),
            trust_env=False,
        )

    async def call(self, name: str, arguments: dict[str, Any]) -> Answer:
        request_id = next(self._ids)
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        started = time.perf_counter()
        response = await self._http.post(self.url, json=body, headers=HEADERS)
        text = response.text
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise CallFailed(f"HTTP {response.status_code}: {text[:300]}")
        result, size = parse_response(text, response.headers.get("content-type", ""), request_id)
        if result.get("isError"):
            raise CallFailed(f"tool error: {json.dumps(result)[:500]}")
        return Answer(result, size, seconds)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> McpHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def call_once_sync(
    http: httpx2.Client, url: str, name: str, arguments: dict[str, Any], timeout: float = 30.0
) -> dict[str, Any]:
    """One blocking call (cold-start probing); raises httpx2.HTTPError or CallFailed.

    `http` is reused across servers: building a client per probe costs the prober ~20 ms (SSL context).
    """
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    response = http.post(url, json=body, headers=HEADERS, timeout=timeout)
    if response.status_code != 200:
        raise CallFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    result, _ = parse_response(response.text, response.headers.get("content-type", ""), 1)
    if result.get("isError"):
        raise CallFailed(f"tool error: {json.dumps(result)[:500]}")
    return result
