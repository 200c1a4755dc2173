"""late_json_as_stream: a JSON answer not begun within a ping interval is sent as an SSE stream with keep-alives.

A one-JSON-body answer says nothing until the call ends; a proxy or client that gives up on a silent response
(idle timeouts of 30-60 s are common) would cut a generation waiting on its job. So if the wrapped app has not
started its answer after PING_SECONDS, this starts a `text/event-stream` answer itself, sends an SSE comment
every PING_SECONDS, and sends the app's JSON-RPC message as the stream's one event when it comes: what the SDK's
stream mode would have sent, without its per-call cost for the calls that end in time.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PING_SECONDS = 15.0  # the SDK's stream mode pings at this interval too
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def _event(body: bytes) -> bytes:
    lines = body.split(b"\n")  # a compact JSON message has none; any there would each need their own data line
    return b"event: message\r\n" + b"".join(b"data: " + line + b"\r\n" for line in lines) + b"\r\n"


async def late_json_as_stream(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, ping_seconds: float = PING_SECONDS
) -> None:
    """Run `app` (answering with one JSON body); past `ping_seconds` without an answer, stream it instead."""
    streaming = False
    answered = False  # the app started its own answer in time: it goes through untouched
    finished = False  # the stream's last message is sent
    body: list[bytes] = []
    lock = asyncio.Lock()  # the pings and the final event never interleave

    async def pinger() -> None:
        nonlocal streaming
        await asyncio.sleep(ping_seconds)
        async with lock:
            if answered:
                return
            streaming = True
            await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
        while True:
            async with lock:
                await send({"type": "http.response.body", "body": b": ping\r\n\r\n", "more_body": True})
            await asyncio.sleep(ping_seconds)

    async def relay(message: Message) -> None:
        nonlocal answered, finished
        async with lock:
            if not streaming:
                answered = True
                await send(message)
                return
        if message["type"] != "http.response.body":
            return  # its own start (status and headers) is replaced by the stream's
        body.append(message.get("body", b""))
        if not message.get("more_body", False):
            ping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ping
            whole = b"".join(body)
            finished = True
            await send({"type": "http.response.body", "body": _event(whole) if whole else b"", "more_body": False})

    ping = asyncio.create_task(pinger())
    try:
        await app(scope, receive, relay)
    finally:
        ping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ping
        if streaming and not finished:  # the app ended without an answer: close the stream properly
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
