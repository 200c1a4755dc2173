"""What every tool shares: the Surface (registration, caller, per-tool error shape) and result framing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field
from starlette.requests import Request

from ..errors import ErrorCode, ImageGenError
from ..tools import CallContext, ImageTools
from .arguments import arguments_model

if TYPE_CHECKING:
    from ..access.caller import Caller
    from ..deps import Deps
    from .jobs import JobTools


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. invalid_argument, content_blocked, rate_limited.")
    message: str
    retryable: bool
    retry_after_seconds: float | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool: its argument model (unknown arguments refused) and what its error result carries."""

    name: str
    arguments: type[BaseModel]
    error_fields: dict[str, Any] = field(default_factory=dict)

    def error_result(self, err: ImageGenError) -> CallToolResult:
        """`err` as an isError result whose structuredContent fits this tool's outputSchema."""
        return CallToolResult(
            content=[TextContent(type="text", text=f"{err.code.value}: {err.message}")],
            structured_content={**self.error_fields, "error": err.to_dict()},
            is_error=True,
        )


@dataclass
class Surface:
    """The server under construction plus what tool modules need: deps, the pipeline, the caller."""

    server: MCPServer
    deps: Deps
    tools: ImageTools
    jobs: JobTools
    in_process_caller: Caller | None
    specs: dict[str, ToolSpec] = field(default_factory=dict)
    resources: set[str] = field(default_factory=set)
    extension_tools: set[str] = field(default_factory=set)  # registered by an extension (the gallery app)

    def tool(self, *, name: str, error_fields: dict[str, Any], **options: Any) -> Callable[[Any], Any]:
        """Register a tool with the SDK (schema from its signature) and record its ToolSpec."""

        def register(fn: Any) -> Any:
            self.server.tool(name=name, **options)(fn)
            self.specs[name] = ToolSpec(name, arguments_model(fn, skip=frozenset({"ctx"})), error_fields)
            return fn

        return register

    def resource(self, uri: str, **options: Any) -> Callable[[Any], Any]:
        """Register a resource with the SDK and record its URI (reads of other URIs are refused up front)."""

        def register(fn: Any) -> Any:
            self.resources.add(uri)
            return self.server.resource(uri, **options)(fn)

        return register

    def call_context(self, ctx: Context) -> CallContext:
        """Who calls: the HTTP request's authenticated caller, else the in-process caller the server was built with."""
        request = ctx.request_context.request
        state = request.state if isinstance(request, Request) else None
        caller = getattr(state, "caller", None) or self.in_process_caller
        if caller is None:
            raise ImageGenError(ErrorCode.UNAUTHENTICATED, "this call has no authenticated caller")
        request_id = getattr(state, "request_id", None) or uuid.uuid4().hex

        async def progress(step: float, message: str) -> None:
            await ctx.report_progress(step, None, message)

        return CallContext(
            caller=caller, request_id=request_id, base_url=getattr(state, "base_url", None), progress=progress
        )


IMAGE_ERROR_FIELDS: dict[str, Any] = {"images": []}


def image_error_result(err: ImageGenError) -> CallToolResult:
    """`err` in the error shape of the image tools (generate_image, edit_image, get_job, cancel_job)."""
    return ToolSpec("image", BaseModel, IMAGE_ERROR_FIELDS).error_result(err)


def image_result(structured: dict[str, Any], preview: dict[str, str] | None = None) -> CallToolResult:
    """A finished generation: a summary, one resource_link per image, and the optional inline preview."""
    items = structured["images"]
    summary = (
        f"{'Edited' if structured.get('operation') == 'edit' else 'Generated'} {len(items)} image(s) with "
        f"{structured['model']}; ids: {', '.join(item['id'] for item in items)}."
    )
    content: list[Any] = [TextContent(type="text", text=summary)]
    for item in items:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=item["url"],
                name=item["id"],
                mime_type=item["mime_type"],
                size=item["size_bytes"],
            )
        )
    if preview is not None:
        content.append(ImageContent(type="image", data=preview["data"], mime_type=preview["mime_type"]))
    return CallToolResult(content=content, structured_content=structured)
