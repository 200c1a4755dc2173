"""late_json_as_stream: an answer in time passes through as it is; a late one becomes an SSE stream with keep-alives."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from imagegen_mcp.late_answer import late_json_as_stream

pytestmark = pytest.mark.anyio
MESSAGE = {"jsonrpc": "2.0", "id": 7, "result": {"content": [], "isError": False, "note": "a\\nb"}}


def json_app(delay: float, *, status: int = 200, chunks: int = 1) -> Any:
    """An ASGI app answering like the SDK's JSON mode, after `delay` seconds (in `chunks` body messages)."""
    body = json.dumps(MESSAGE, separators=(",", ":")).encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(delay)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        step = max(1, len(body) // chunks)
        parts = [body[i : i + step] for i in range(0, len(body), step)]
        for index, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": index < len(parts) - 1})

    return app


async def run(app: Any, ping: float) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    await late_json_as_stream(app, {"type": "http"}, receive, send, ping_seconds=ping)
    return sent


async def test_an_answer_in_time_goes_through_untouched() -> None:
    sent = await run(json_app(0.0, status=202, chunks=3), ping=5.0)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 202
    assert b"".join(m["body"] for m in sent[1:]) == json.dumps(MESSAGE, separators=(",", ":")).encode()
    flags = [m.get("more_body") for m in sent[1:]]
    assert len(flags) >= 3 and all(flags[:-1]) and flags[-1] is False


async def test_a_late_answer_becomes_a_stream_with_keep_alives_and_one_event() -> None:
    sent = await run(json_app(0.35, chunks=2), ping=0.1)
    start, *body = sent
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert dict(start["headers"])[b"content-type"] == b"text/event-stream"
    pings = [m for m in body if m["body"] == b": ping\r\n\r\n"]
    assert len(pings) >= 2 and all(m["more_body"] for m in pings)  # one right away, then every interval
    last = body[-1]
    assert last["more_body"] is False and len(body) == len(pings) + 1
    event = last["body"].decode()
    assert event.startswith("event: message\r\ndata: ") and event.endswith("\r\n\r\n")
    assert json.loads(event.split("data: ", 1)[1]) == MESSAGE  # the app's message, whole, as the stream's event


async def test_an_app_that_ends_without_answering_still_closes_its_stream() -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.25)

    sent = await run(silent, ping=0.1)
    assert sent[0]["type"] == "http.response.start" and sent[-1] == {
        "type": "http.response.body",
        "body": b"",
        "more_body": False,
    }
