"""The create_upload tool: a signed PUT window for a file on the agent's machine, usable in edit_image by its id."""

# No `from __future__ import annotations`: the SDK evaluates the signature, whose bounds come from settings.
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..errors import ImageGenError
from ..images.uploads import MAX_FILENAME_CHARS, open_upload
from .framing import ErrorBody, Surface


class UploadResult(BaseModel):
    """Result of create_upload; an error result carries only `error`."""

    id: str | None = Field(None, description="Upload id: pass it in edit_image `images` or `mask` once uploaded.")
    upload_url: str | None = Field(None, description="Signed, short-lived URL to PUT the file's bytes to.")
    method: Literal["PUT"] | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="Headers the PUT must carry, exactly.")
    expires_at: str | None = Field(None, description="When `upload_url` stops accepting the file (RFC 3339, UTC).")
    max_bytes: int | None = Field(None, description="Most bytes the PUT may carry (the declared size_bytes).")
    curl: str | None = Field(None, description="A ready shell command that uploads the file.")
    error: ErrorBody | None = None


def register(surface: Surface) -> None:
    """Register create_upload."""
    deps = surface.deps
    max_bytes = deps.settings.max_input_image_bytes
    ttl_minutes = max(1, deps.settings.upload_ttl_seconds // 60)

    @surface.tool(
        name="create_upload",
        error_fields={},
        title="Upload a local image",
        description=(
            "Get a short-lived signed URL to upload an image file from your machine (instead of base64 in the "
            "arguments). Run the returned `curl` command (or PUT the bytes to `upload_url` with exactly "
            f"`headers`) within ~{ttl_minutes} min, then pass the returned `id` to edit_image in `images` or "
            "`mask`. Only you (the same API key or principal) can use the id."
        ),
        annotations=ToolAnnotations(
            title="Upload a local image",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    async def create_upload(
        mime_type: Annotated[str, Field(max_length=64, description="image/png, image/jpeg or image/webp.")],
        size_bytes: Annotated[
            int, Field(ge=1, le=max_bytes, description=f"The file's size in bytes (at most {max_bytes}).")
        ],
        ctx: Context,
        filename: Annotated[
            str | None,
            Field(max_length=MAX_FILENAME_CHARS, description="Path of the local file, used in the `curl` line."),
        ] = None,
    ) -> Annotated[CallToolResult, UploadResult]:
        try:
            call = surface.call_context(ctx)
            answer = await open_upload(
                deps.settings,
                deps.store,
                call.caller,
                mime_type=mime_type,
                size_bytes=size_bytes,
                filename=filename,
                base_url=call.base_url,
                limiter=deps.rate_limiter,
            )
        except ImageGenError as err:
            return surface.specs["create_upload"].error_result(err)
        text = (
            f"Upload id {answer['id']}. Run, before {answer['expires_at']}:\n{answer['curl']}\n"
            f'then call edit_image with images=["{answer["id"]}"].'
        )
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=answer)
