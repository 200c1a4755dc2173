"""Deploy entry: functions-framework target `mcp` and the ASGI `app` for uvicorn, over the same application."""

from __future__ import annotations

import gc
import sys

# Importing the app builds ~100k objects that live as long as the process: the ~20 collections that would run
# meanwhile free almost nothing yet cost ~80 ms of a cold start. So no collection runs until the app is built,
# then it is all moved out of the collector's sight (gc.freeze: also what keeps a forked worker from copying
# those pages when it collects); what the import left unreachable (~3k objects) is held for good.
gc.disable()
try:
    from imagegen_mcp.app import create_app
    from imagegen_mcp.config import Settings
    from imagegen_mcp.functions_adapter import function_handler

    app = create_app(Settings())
    _handle = function_handler(app)
finally:
    gc.freeze()
    gc.enable()


async def mcp(request):  # type: ignore[no-untyped-def]
    """Cloud Run functions entry point (`functions-framework --source function/main.py --target mcp`)."""
    return await _handle(request)


# Register as an async (ASGI) function only when functions-framework is the one loading this module: under
# uvicorn, importing it would pull in Flask and cost ~0.2 s of cold start for nothing.
if "functions_framework" in sys.modules:
    import functions_framework.aio

    mcp = functions_framework.aio.http(mcp)
