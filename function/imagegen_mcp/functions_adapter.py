"""Serves the ASGI app from a functions-framework `@aio.http` target, which has no lifespan hook of its own."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _LifespanRunner:
    """Runs an ASGI app's lifespan startup once per event loop (per worker) and keeps it open."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._started: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        future = self._started.get(id(loop))
        if future is None:
            future = loop.create_future()
            self._started[id(loop)] = future
            task = loop.create_task(self._run(future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.shield(future)

    async def _run(self, started: asyncio.Future[None]) -> None:
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def receive() -> Message:
            return await inbox.get()  # after startup, waits forever: the worker's lifetime

        async def send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete" and not started.done():
                started.set_result(None)
            elif message["type"] == "lifespan.startup.failed" and not started.done():
                started.set_exception(RuntimeError(message.get("message") or "startup failed"))

        try:
            await self._app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise


class _Passthrough:
    """A 'response' that lets the real app answer the raw ASGI request (streaming included)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def function_handler(app: ASGIApp) -> Any:
    """An async request handler for `@functions_framework.aio.http` that forwards to `app`."""
    runner = _LifespanRunner(app)

    async def handle(request: Any) -> _Passthrough:
        await runner.ensure_started()
        return _Passthrough(app)

    return handle
