"""The benchmark floors: a bare MCPServer served like the endpoint (uvicorn `app`, ff `mcp`), with two tools.

`echo` is the floor of the MCP transport itself; `payload` adds only the per-image work no proxying endpoint can
avoid (fetch the upstream JSON, base64-decode, check the PNG header, one file write, one HMAC signature): the
"payload floor" the endpoint's CPU per call is held to.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import hmac
import itertools
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import httpx2
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


# The bench names the folder (inside the process's scratch folder, removed with it); started by hand, a temporary one.
_OUT = Path(os.environ.get("BENCH_FLOOR_OUT") or tempfile.mkdtemp(prefix="bench-floor-payload-"))
_OUT.mkdir(parents=True, exist_ok=True)
if "BENCH_FLOOR_OUT" not in os.environ:
    atexit.register(shutil.rmtree, _OUT, ignore_errors=True)
_NAMES = itertools.count()
_KEY = b"bench-floor-signing-key"
_http: httpx2.AsyncClient | None = None


@server.tool(name="payload", description="Fetch one image from an OpenAI-format upstream, store it, sign a link.")
async def payload(url: str) -> str:
    global _http
    if _http is None:
        _http = httpx2.AsyncClient(trust_env=False, timeout=60)
    response = await _http.post(f"{url}/images/generations", json={"prompt": "x"})
    import pybase64  # the endpoint's own codec: the unavoidable decode done as cheaply as the endpoint does it

    data = pybase64.b64decode(response.json()["data"][0]["b64_json"], validate=True)
    del response
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    name = f"{next(_NAMES)}.png"
    await asyncio.to_thread((_OUT / name).write_bytes, data)
    sig = hmac.new(_KEY, f"{name}\n{width}x{height}".encode(), hashlib.sha256).hexdigest()
    return f"http://127.0.0.1/files/{name}?sig={sig}"


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
