"""Deploy entry: functions-framework target `mcp` and the ASGI `app` for uvicorn, over the same application."""

from __future__ import annotations

import functions_framework.aio

from imagegen_mcp.app import create_app
from imagegen_mcp.config import Settings
from imagegen_mcp.functions_adapter import function_handler

app = create_app(Settings())
_handle = function_handler(app)


@functions_framework.aio.http
async def mcp(request):  # type: ignore[no-untyped-def]
    """Cloud Run functions entry point (`functions-framework --source function/main.py --target mcp`)."""
    return await _handle(request)
