"""The official MCP client over real streamable HTTP, with the HTTP statuses its transport saw recorded."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@dataclass
class HttpRecord:
    """Every HTTP status (counted, and in the order seen) and X-Request-Id the MCP client's transport saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    sequence: list[int] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    async def hook(self, response: httpx2.Response) -> None:
        self.statuses[response.status_code] += 1
        self.sequence.append(response.status_code)
        if "x-request-id" in response.headers:
            self.request_ids.append(response.headers["x-request-id"])


@contextlib.asynccontextmanager
async def mcp_client(
    url: str, *, headers: dict[str, str] | None = None, record: HttpRecord | None = None, timeout: float = 60.0
) -> AsyncIterator[Client]:
    """The official client over streamable HTTP, with optional extra headers and a status recorder."""
    hooks = {"response": [record.hook]} if record is not None else {}
    async with httpx2.AsyncClient(headers=headers or {}, timeout=timeout, event_hooks=hooks) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client
