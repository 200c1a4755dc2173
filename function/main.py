"""Deploy entry: functions-framework target `mcp` and the ASGI `app` for uvicorn, over the same application."""

from __future__ import annotations

import sys

from imagegen_mcp.app import create_app
from imagegen_mcp.config import Settings
from imagegen_mcp.functions_adapter import function_handler

app = create_app(Settings())
_handle = function_handler(app)


async def mcp(request):  # type: ignore[no-untyped-def]
    """Cloud Run functions entry point (`functions-framework --source function/main.py --target mcp`)."""
    return await _handle(request)


# Register as an async (ASGI) function only when functions-framework is the one loading this module: under
# uvicorn, importing it would pull in Flask and cost ~0.2 s of cold start for nothing.
if "functions_framework" in sys.modules:
    import functions_framework.aio

    mcp = functions_framework.aio.http(mcp)
