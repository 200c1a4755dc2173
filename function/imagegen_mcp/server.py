"""build_server(deps): the MCP surface — tools, the models resource and the prompts, with their schemas."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from . import __version__
from .catalog import GenerationOptions
from .deps import Deps
from .errors import ErrorCode, ImageGenError
from .logs import current_fields, log_fields
from .tools import CallContext, ImageTools
from .usage_tools import register_usage_tools

log = logging.getLogger("imagegen_mcp.calls")

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
ImageSize = Literal["1K", "2K", "4K"]
Quality = Literal["low", "medium", "high", "auto"]
Background = Literal["transparent", "opaque", "auto"]
OutputFormat = Literal["png", "jpeg", "webp"]

INSTRUCTIONS = (
    "Generate and edit images. Call list_models to see which models this deployment offers and what each "
    "supports. generate_image returns links (resource_link blocks and structuredContent.images[].url, which "
    "expire) and a durable id; pass that id to edit_image to keep editing the same image in later calls."
)


# --- output schemas ------------------------------------------------------------------------------------------
class ImageItem(BaseModel):
    id: str = Field(description="Durable id of this output; pass it to edit_image to edit it again.")
    url: str = Field(description="Signed, expiring HTTPS link to the image bytes.")
    uri: str = Field(description="Durable storage URI (gs://... or file://...).")
    mime_type: str
    width: int
    height: int
    size_bytes: int
    expires_at: str = Field(description="When `url` stops working (RFC 3339, UTC).")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. invalid_argument, content_blocked, rate_limited.")
    message: str
    retryable: bool
    retry_after_seconds: float | None = None
    details: dict[str, Any] | None = None


class ImageResult(BaseModel):
    """Result of generate_image / edit_image."""

    images: list[ImageItem] = Field(default_factory=list)
    model: str | None = None
    provider: str | None = None
    prompt: str | None = None
    prompt_truncated: bool | None = None
    text: str | None = Field(None, description="Any text the model returned alongside the images.")
    operation: Literal["generate", "edit"] | None = None
    estimated_cost_usd: float | None = Field(
        None, description="Estimated USD of this call from the catalog's prices (null: the price is unknown)."
    )
    error: ErrorBody | None = None
    job_id: str | None = Field(None, description="The job behind this result; pass it to get_job or cancel_job.")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = Field(
        None, description="The job's status; queued/running: call get_job with job_id to fetch the images."
    )
    progress: str | None = Field(None, description="The job's latest progress message.")
    poll_after_seconds: float | None = Field(None, description="While running: when calling get_job is worthwhile.")


class ModelEntry(BaseModel):
    id: str
    title: str
    description: str
    provider: str | None = Field(description="Provider serving this model in this deployment (null: unavailable).")
    providers: list[str]
    available: bool
    unavailable_reason: str | None = None
    replaced_by: str | None = None
    capabilities: dict[str, Any]
    price_per_image_usd: float | None = Field(None, description="Catalog price of one image (null: unknown).")


class ModelList(BaseModel):
    default_model: str
    models: list[ModelEntry]


# --- result framing ------------------------------------------------------------------------------------------
def error_result(err: ImageGenError) -> CallToolResult:
    body = err.to_dict()
    return CallToolResult(
        content=[TextContent(type="text", text=f"{err.code.value}: {err.message}")],
        structured_content={"images": [], "error": body},
        is_error=True,
    )


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


OPTION_FIELDS = dict(
    model=Field(description="Model id from list_models; omit for the deployment's default."),
    n=Field(ge=1, le=4, description="How many images (1-4; the model's max_n applies)."),
    aspect_ratio=Field(description="Aspect ratio, e.g. 1:1, 3:2, 16:9 (model-dependent)."),
    image_size=Field(description="Resolution class 1K/2K/4K where the model supports it."),
    quality=Field(description="Quality tier where the model supports it."),
    background=Field(description="transparent/opaque/auto (transparent needs a model that supports it)."),
    negative_prompt=Field(max_length=2000, description="What to avoid, where the model supports it."),
    seed=Field(ge=0, le=2**31 - 1, description="Seed for reproducible outputs, where supported."),
    output_format=Field(description="png, jpeg or webp."),
    preview=Field(description="Also return one small inline preview (≤512 px). Off by default."),
)


WAIT_FIELD = Field(
    ge=0,
    le=300,
    description="Seconds to wait for the images (0-300; default: the server's). Past that the call returns "
    "status=running with a job_id; fetch the images later with get_job.",
)

_PYDANTIC_NOISE = re.compile(r"\s*For further information visit \S+")


def _argument_error(text: str) -> ImageGenError:
    """The SDK's schema-validation failure, reshaped into our typed `invalid_argument` error."""
    detail = _PYDANTIC_NOISE.sub("", text.split(": ", 1)[-1]).strip()
    return ImageGenError(ErrorCode.INVALID_ARGUMENT, f"invalid arguments: {detail[:1500]}")


async def typed_tool_errors(ctx: Any, call_next: Any) -> Any:
    """Middleware: every failed tools/call carries `structuredContent.error` with a stable code."""
    try:
        result = await call_next(ctx)
    except ValueError as exc:
        if ctx.method != "prompts/get" or isinstance(exc, ValidationError):  # the SDK maps the latter itself
            raise
        # The SDK reports an unknown prompt or missing arguments as a bare ValueError: logged as an ERROR with a
        # stack trace and answered with code 0. It is the caller's mistake: invalid params, nothing logged.
        raise MCPError(INVALID_PARAMS, str(exc)) from exc
    if ctx.method != "tools/call":
        return result
    if isinstance(result, CallToolResult):
        is_error, structured = result.is_error, result.structured_content
        texts = [c.text for c in result.content if isinstance(c, TextContent)]
    elif isinstance(result, dict):
        is_error, structured = result.get("isError"), result.get("structuredContent")
        texts = [
            c.get("text", "") for c in result.get("content", []) if isinstance(c, dict) and c.get("type") == "text"
        ]
    else:
        return result
    if not is_error or structured is not None:
        return result
    text = texts[0] if texts else ""
    if "validation error" in text:
        return error_result(_argument_error(text))
    if text.startswith("Unknown tool"):
        return error_result(ImageGenError(ErrorCode.NOT_FOUND, text))
    return error_result(ImageGenError(ErrorCode.INTERNAL, "internal error", retryable=True))


def _request_scope_state(ctx: Context) -> dict[str, Any]:
    request = getattr(ctx.request_context, "request", None)
    scope = getattr(request, "scope", None)
    return scope.get("state", {}) if isinstance(scope, dict) else {}


def build_server(deps: Deps) -> MCPServer:
    """The MCP server object with every tool, resource and prompt registered."""
    server: MCPServer = MCPServer(
        "imagegen-mcp",
        title="Image generation (Gemini, OpenAI, OpenRouter, FLUX)",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=deps.settings.log_level,
    )
    server.middleware.append(typed_tool_errors)
    tools = ImageTools(deps)
    from .job_tools import JobTools, register_job_tools  # imports this module: loaded once it is

    jobs = JobTools(deps, tools)

    def call_context(ctx: Context) -> CallContext:
        from .access.auth import Caller

        state = _request_scope_state(ctx)
        caller = state.get("caller") or Caller(id="in-process", kind="none")
        request_id = state.get("request_id") or uuid.uuid4().hex

        async def progress(step: float, message: str) -> None:
            await ctx.report_progress(step, None, message)

        return CallContext(caller=caller, request_id=request_id, base_url=state.get("base_url"), progress=progress)

    async def run_tool(name: str, ctx: Context, wait_seconds: float | None, **kwargs: Any) -> CallToolResult:
        call = call_context(ctx)
        log_fields(caller=call.caller.id)  # every log line of this call names the caller
        started = time.monotonic()
        outcome_code = "cancelled"  # kept when the client hangs up: cancellation passes through the excepts below
        try:
            operation = "edit" if name == "edit_image" else "generate"
            result = await jobs.start(call, operation, wait_seconds, kwargs)
            structured = result.structured_content or {}
            error = structured.get("error")
            outcome_code = error["code"] if isinstance(error, dict) else "ok"
            return result
        except ImageGenError as err:
            outcome_code = err.code.value
            return error_result(err)
        except Exception:
            outcome_code = ErrorCode.INTERNAL.value
            log.exception("unexpected error in %s", name)
            return error_result(
                ImageGenError(ErrorCode.INTERNAL, f"internal error; reference {call.request_id}", retryable=True)
            )
        finally:
            fields = current_fields()
            prompt = kwargs.get("prompt") or ""
            prompt_chars = deps.settings.log_prompt_chars
            log.info(
                "tool call",
                extra={
                    "fields": {
                        "tool": name,
                        "outcome": outcome_code,
                        "latency_ms": round((time.monotonic() - started) * 1000),
                        "model": fields.get("model") or kwargs.get("model"),
                        "n": kwargs["options"].n,
                        "prompt": prompt[:prompt_chars] if prompt_chars else None,
                        "prompt_chars": len(prompt) if isinstance(prompt, str) else None,
                    }
                },
            )

    @server.tool(
        name="generate_image",
        title="Generate image",
        description=(
            "Generate 1-4 images from a text prompt. Returns expiring links plus durable ids (no image bytes "
            "unless preview=true). Check list_models for what each model supports."
        ),
        annotations=ToolAnnotations(
            title="Generate image",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def generate_image(
        prompt: Annotated[str, Field(min_length=1, description="What to draw.")],
        ctx: Context,
        model: Annotated[str | None, OPTION_FIELDS["model"]] = None,
        n: Annotated[int, OPTION_FIELDS["n"]] = 1,
        aspect_ratio: Annotated[AspectRatio | None, OPTION_FIELDS["aspect_ratio"]] = None,
        image_size: Annotated[ImageSize | None, OPTION_FIELDS["image_size"]] = None,
        quality: Annotated[Quality | None, OPTION_FIELDS["quality"]] = None,
        background: Annotated[Background | None, OPTION_FIELDS["background"]] = None,
        negative_prompt: Annotated[str | None, OPTION_FIELDS["negative_prompt"]] = None,
        seed: Annotated[int | None, OPTION_FIELDS["seed"]] = None,
        output_format: Annotated[OutputFormat, OPTION_FIELDS["output_format"]] = "png",
        preview: Annotated[bool, OPTION_FIELDS["preview"]] = False,
        wait_seconds: Annotated[float | None, WAIT_FIELD] = None,
    ) -> Annotated[CallToolResult, ImageResult]:
        options = GenerationOptions(
            n=n,
            aspect_ratio=aspect_ratio,
            image_size=image_size,
            quality=quality,
            background=background,
            negative_prompt=negative_prompt,
            seed=seed,
            output_format=output_format,
        )
        return await run_tool(
            "generate_image", ctx, wait_seconds, prompt=prompt, model=model, options=options, preview=preview
        )

    @server.tool(
        name="edit_image",
        title="Edit image",
        description=(
            "Edit one or more images with a text instruction. `images` items may be a data URL, bare base64, an "
            "https URL, a gs:// URI, or the id/url of an earlier output of this server (keep editing your last "
            "image by passing its id). Optional `mask` (PNG; transparent pixels mark the area to change)."
        ),
        annotations=ToolAnnotations(
            title="Edit image",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def edit_image(
        prompt: Annotated[str, Field(min_length=1, description="The change to make.")],
        images: Annotated[list[str], Field(min_length=1, max_length=16, description="Input images (see above).")],
        ctx: Context,
        mask: Annotated[str | None, Field(description="Optional mask image, same size as the first image.")] = None,
        model: Annotated[str | None, OPTION_FIELDS["model"]] = None,
        n: Annotated[int, OPTION_FIELDS["n"]] = 1,
        aspect_ratio: Annotated[AspectRatio | None, OPTION_FIELDS["aspect_ratio"]] = None,
        image_size: Annotated[ImageSize | None, OPTION_FIELDS["image_size"]] = None,
        quality: Annotated[Quality | None, OPTION_FIELDS["quality"]] = None,
        background: Annotated[Background | None, OPTION_FIELDS["background"]] = None,
        negative_prompt: Annotated[str | None, OPTION_FIELDS["negative_prompt"]] = None,
        seed: Annotated[int | None, OPTION_FIELDS["seed"]] = None,
        output_format: Annotated[OutputFormat, OPTION_FIELDS["output_format"]] = "png",
        preview: Annotated[bool, OPTION_FIELDS["preview"]] = False,
        wait_seconds: Annotated[float | None, WAIT_FIELD] = None,
    ) -> Annotated[CallToolResult, ImageResult]:
        options = GenerationOptions(
            n=n,
            aspect_ratio=aspect_ratio,
            image_size=image_size,
            quality=quality,
            background=background,
            negative_prompt=negative_prompt,
            seed=seed,
            output_format=output_format,
        )
        return await run_tool(
            "edit_image",
            ctx,
            wait_seconds,
            prompt=prompt,
            model=model,
            options=options,
            preview=preview,
            images=images,
            mask=mask,
        )

    @server.tool(
        name="list_models",
        title="List models",
        description=(
            "Every model in the catalog: provider, capabilities, and whether it is available here (and why not)."
        ),
        annotations=ToolAnnotations(
            title="List models",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def list_models() -> Annotated[CallToolResult, ModelList]:
        listing = await tools.list_models()
        names = ", ".join(f"{m['id']}{'' if m['available'] else ' (unavailable)'}" for m in listing["models"])
        return CallToolResult(
            content=[TextContent(type="text", text=f"default: {listing['default_model']}; models: {names}")],
            structured_content=listing,
        )

    register_job_tools(server, jobs, call_context)
    register_usage_tools(server, tools.usage, call_context)

    @server.resource(
        "imagegen://models",
        name="models",
        title="Model catalog",
        description="The model catalog with capabilities and availability, as JSON.",
        mime_type="application/json",
    )
    async def models_resource() -> str:
        return json.dumps(await tools.list_models(), indent=2)

    @server.prompt(name="basic", title="Basic image prompt", description="Generate an image from a description.")
    def basic(description: str) -> str:
        return f"Use the generate_image tool to create an image of: {description}"

    @server.prompt(
        name="detailed",
        title="Detailed image prompt",
        description="Generate an image from a subject plus style, mood and lighting.",
    )
    def detailed(subject: str, style: str = "", mood: str = "", lighting: str = "") -> str:
        parts = [f"Subject: {subject}"]
        parts += [
            f"{label}: {value}" for label, value in (("Style", style), ("Mood", mood), ("Lighting", lighting)) if value
        ]
        return "Use the generate_image tool to create an image with these details.\n" + "\n".join(parts)

    return server
