"""build_server(deps, *, in_process_caller): the MCP server spine — registers the tool modules, checks calls.

A new tool is a new module in surface/ with a `register(surface)` function, added to TOOL_MODULES.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult
from pydantic import ValidationError

from . import __version__
from .errors import ErrorCode, ImageGenError, clip
from .surface import images, jobs, models, prompts, uploads, usage
from .surface.arguments import check_arguments
from .surface.framing import Surface
from .tools import ImageTools
from .ui.app import GALLERY_URI, LINKS_TOOL, build_gallery

if TYPE_CHECKING:
    from .access.caller import Caller
    from .deps import Deps

log = logging.getLogger("imagegen_mcp.calls")

# The 2025-06-18 and 2025-11-25 specifications: unknown tool -> -32602 (INVALID_PARAMS), unknown resource -> -32002.
RESOURCE_NOT_FOUND = -32002
TOOL_MODULES: tuple[Callable[[Surface], None], ...] = (
    images.register,
    jobs.register,
    models.register,
    prompts.register,
    uploads.register,
    usage.register,
)

INSTRUCTIONS = (
    "Generate and edit images. Call list_models to see which models this deployment offers and what each "
    "supports. generate_image returns links (resource_link blocks and structuredContent.images[].url, which "
    "expire) and a durable id; pass that id to edit_image to keep editing the same image in later calls. To edit a "
    "file on your machine, call create_upload, run the curl command it returns, then pass its id to edit_image."
)


def _checked_calls(surface: Surface) -> ServerMiddleware[Any]:
    """Middleware: refuse unknown tools/resources as JSON-RPC errors and bad arguments as typed results, up front."""

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:
            # A notification (no id), whatever its method: nobody awaits an answer, so nothing is checked here
            # (a refusal would only be logged as a handler crash); the SDK drops methods it has no handler for.
            return await call_next(ctx)
        params = ctx.params if isinstance(ctx.params, Mapping) else {}
        spec = None
        if ctx.method == "tools/call" and isinstance(params.get("name"), str):
            spec = surface.specs.get(params["name"])
            if spec is None and params["name"] in surface.extension_tools:
                return await call_next(ctx)  # an extension's own tool: the SDK checks its arguments
            if spec is None:
                raise MCPError(INVALID_PARAMS, f"Unknown tool: {clip(params['name'])}")
            arguments = params.get("arguments")
            # Arguments that are not an object are malformed params: the SDK answers those with -32602 itself.
            problem = check_arguments(spec.arguments, arguments) if isinstance(arguments, dict | None) else None
            if problem is not None:
                log.info("rejected arguments", extra={"fields": {"tool": spec.name, "reason": problem.message}})
                return spec.error_result(problem)
        if ctx.method == "resources/read" and isinstance(params.get("uri"), str):
            if params["uri"] not in surface.resources:
                raise MCPError(RESOURCE_NOT_FOUND, "Resource not found", data={"uri": clip(params["uri"])})
        try:
            result = await call_next(ctx)
        except ValueError as exc:
            if ctx.method != "prompts/get" or isinstance(exc, ValidationError):  # the SDK maps the latter itself
                raise
            # The SDK reports an unknown prompt or missing arguments as a bare ValueError (pinned by
            # test_sdk_contract_prompt_errors_are_value_errors): the caller's mistake, answered as invalid params.
            raise MCPError(INVALID_PARAMS, str(exc)) from exc
        if (
            spec is not None
            and isinstance(result, CallToolResult)
            and result.is_error
            and not result.structured_content
        ):
            # A defect the SDK caught (and logged with its trace): mask it, in this tool's error shape.
            return spec.error_result(ImageGenError(ErrorCode.INTERNAL, "internal error", retryable=True))
        return result

    return middleware


def build_server(deps: Deps, *, in_process_caller: Caller | None) -> MCPServer:
    """The MCP server with every tool module registered.

    Calls over HTTP are made by the caller the auth middleware put in the request state; `in_process_caller` is
    who makes calls that arrive without an HTTP request (an in-process client). None refuses such calls.
    """
    # The gallery's tool asks the surface (built below, from this server) who calls.
    gallery = build_gallery(deps, lambda ctx: surface.call_context(ctx).caller)
    server: MCPServer = MCPServer(
        "imagegen-mcp",
        title="Image generation (Gemini, OpenAI, OpenRouter, FLUX)",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=deps.settings.log_level,
        extensions=[gallery.apps],
    )
    tools = ImageTools(deps)
    surface = Surface(
        server=server,
        deps=deps,
        tools=tools,
        jobs=jobs.JobTools(deps, tools),
        in_process_caller=in_process_caller,
    )
    surface.resources.add(GALLERY_URI)
    surface.extension_tools.add(LINKS_TOOL)
    server.middleware.append(_checked_calls(surface))
    server.middleware.append(gallery.middleware)
    for register in TOOL_MODULES:
        register(surface)
    return server
