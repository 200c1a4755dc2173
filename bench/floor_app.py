"""The benchmark floor: a bare MCPServer with one trivial tool, served like the endpoint (uvicorn `app`, ff `mcp`)."""

from __future__ import annotations

import asyncio
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imagegen_mcp.functions_adapter import function_handler

server: MCPServer = MCPServer("bench-floor")


@server.tool(name="echo", description="Return the text, after `delay` seconds.")
async def echo(text: str, delay: float = 0.0) -> str:
    if delay > 0:
        await asyncio.sleep(min(delay, 30.0))
    return text


# The same transport settings as imagegen_mcp.app.create_app.
app = server.streamable_http_app(
    stateless_http=True,
    json_response=False,
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app.router.routes.append(Route("/healthz", _healthz, methods=["GET"]))
# The endpoint's own adapter (a ~2 KB module of the package): the floor pays the same forwarding cost.
_handle = function_handler(app)


async def mcp(request):  # type: ignore[no-untyped-def]
    """functions-framework target, like function/main.py's (registered the same way, only under the framework)."""
    return await _handle(request)


if "functions_framework" in sys.modules:
    import functions_framework.aio

    mcp = functions_framework.aio.http(mcp)
