"""The image tools: generate_image and edit_image (the pipeline is tools.ImageTools.run)."""

# No `from __future__ import annotations`: the SDK evaluates the signatures, whose bounds come from settings.
import logging
import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from ..catalog import GenerationOptions
from ..errors import ErrorCode, ImageGenError
from ..logs import current_fields, log_fields
from .arguments import with_generation_options
from .framing import ErrorBody, Surface

log = logging.getLogger("imagegen_mcp.calls")
MAX_INPUT_IMAGES = 16
WAIT_FIELD = Field(
    ge=0,
    le=300,
    description="Seconds to wait for the images (0-300; default: the server's). Past that the call returns "
    "status=running with a job_id; fetch the images later with get_job.",
)


class Download(BaseModel):
    filename: str = Field(description="Suggested file name from the prompt ([a-z0-9-] and the type's extension).")
    curl: str = Field(description="Shell command that saves the image under that name (valid while `url` is).")


class ImageItem(BaseModel):
    id: str = Field(description="Durable id of this output; pass it to edit_image to edit it again.")
    url: str = Field(description="Signed, expiring HTTPS link to the image bytes.")
    uri: str = Field(description="Durable storage URI (gs://... or file://...).")
    mime_type: str
    width: int
    height: int
    size_bytes: int
    expires_at: str = Field(description="When `url` stops working (RFC 3339, UTC).")
    download: Download | None = Field(None, description="How to save the image in the user's workspace.")


class ImageResult(BaseModel):
    """Result of generate_image / edit_image."""

    images: list[ImageItem] = Field(default_factory=list)
    model: str | None = None
    provider: str | None = None
    prompt: str | None = None
    prompt_truncated: bool | None = None
    text: str | None = Field(None, description="Any text the model returned alongside the images.")
    operation: Literal["generate", "edit"] | None = None
    error: ErrorBody | None = None
    estimated_cost_usd: float | None = Field(
        None, description="Estimated USD of this call from the catalog's prices (null: the price is unknown)."
    )
    job_id: str | None = Field(None, description="The job behind this result; pass it to get_job or cancel_job.")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = Field(
        None, description="The job's status; queued/running: call get_job with job_id to fetch the images."
    )
    progress: str | None = Field(None, description="The job's latest progress message.")
    poll_after_seconds: float | None = Field(None, description="While running: when calling get_job is worthwhile.")


def _annotations(title: str) -> ToolAnnotations:
    return ToolAnnotations(
        title=title, read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    )


def register(surface: Surface) -> None:
    """Register generate_image and edit_image."""
    deps = surface.deps
    prompt_chars = deps.settings.max_prompt_chars
    image_chars = deps.settings.max_request_bytes  # an inline image cannot be longer than the request body

    async def run_tool(
        name: str, ctx: Context, options: GenerationOptions, wait_seconds: float | None, **kwargs: Any
    ) -> CallToolResult:
        spec = surface.specs[name]
        started = time.monotonic()
        outcome_code = "cancelled"  # kept when the client hangs up: cancellation passes through the excepts below
        request_id: str | None = None
        try:
            call = surface.call_context(ctx)
            request_id = call.request_id
            log_fields(caller=call.caller.id)  # every log line of this call names the caller
            operation = "edit" if name == "edit_image" else "generate"
            result = await surface.jobs.start(call, operation, wait_seconds, {"options": options, **kwargs})
            structured = result.structured_content or {}
            error = structured.get("error")
            outcome_code = error["code"] if isinstance(error, dict) else "ok"
            return result
        except ImageGenError as err:
            outcome_code = err.code.value
            return spec.error_result(err)
        except Exception:
            outcome_code = ErrorCode.INTERNAL.value
            log.exception("unexpected error in %s", name)
            reference = f"; reference {request_id}" if request_id else ""
            return spec.error_result(ImageGenError(ErrorCode.INTERNAL, f"internal error{reference}", retryable=True))
        finally:
            fields = current_fields()
            prompt = kwargs.get("prompt") or ""
            log_chars = deps.settings.log_prompt_chars
            log.info(
                "tool call",
                extra={
                    "fields": {
                        "tool": name,
                        "outcome": outcome_code,
                        "latency_ms": round((time.monotonic() - started) * 1000),
                        "model": fields.get("model") or kwargs.get("model"),
                        "n": options.n,
                        "prompt": prompt[:log_chars] if log_chars else None,
                        "prompt_chars": len(prompt) if isinstance(prompt, str) else None,
                    }
                },
            )

    @surface.tool(
        name="generate_image",
        error_fields={"images": []},
        title="Generate image",
        description=(
            "Generate 1-4 images from a text prompt. Returns expiring links, durable ids, a download command per "
            "image and one small preview image (preview=false leaves it out). Check list_models for what each "
            "model supports."
        ),
        annotations=_annotations("Generate image"),
    )
    @with_generation_options
    async def generate_image(
        prompt: Annotated[str, Field(min_length=1, max_length=prompt_chars, description="What to draw.")],
        ctx: Context,
        wait_seconds: Annotated[float | None, WAIT_FIELD] = None,
        *,
        model: str | None,
        options: GenerationOptions,
        preview: bool | None,
    ) -> Annotated[CallToolResult, ImageResult]:
        return await run_tool("generate_image", ctx, options, wait_seconds, prompt=prompt, model=model, preview=preview)

    @surface.tool(
        name="edit_image",
        error_fields={"images": []},
        title="Edit image",
        description=(
            "Edit one or more images with a text instruction. `images` items may be a data URL, bare base64, an "
            "https URL, a gs:// URI, the id/url of an earlier output of this server (keep editing your last "
            "image by passing its id), or the id of a create_upload (for a file on your machine). "
            "Optional `mask` (PNG; transparent pixels mark the area to change)."
        ),
        annotations=_annotations("Edit image"),
    )
    @with_generation_options
    async def edit_image(
        prompt: Annotated[str, Field(min_length=1, max_length=prompt_chars, description="The change to make.")],
        images: Annotated[
            list[Annotated[str, Field(max_length=image_chars)]],
            Field(min_length=1, max_length=MAX_INPUT_IMAGES, description="Input images (see above)."),
        ],
        ctx: Context,
        mask: Annotated[
            str | None, Field(max_length=image_chars, description="Optional mask image, same size as the first image.")
        ] = None,
        wait_seconds: Annotated[float | None, WAIT_FIELD] = None,
        *,
        model: str | None,
        options: GenerationOptions,
        preview: bool | None,
    ) -> Annotated[CallToolResult, ImageResult]:
        return await run_tool(
            "edit_image",
            ctx,
            options,
            wait_seconds,
            prompt=prompt,
            model=model,
            preview=preview,
            images=images,
            mask=mask,
        )
