"""The job tools: generate/edit answered from their job, get_job and cancel_job, and how a job reads as a result."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..errors import ErrorCode, ImageGenError
from ..images.download import link_fields
from ..jobs import model
from ..jobs.service import JobService
from .framing import IMAGE_ERROR_FIELDS, Surface, image_error_result, image_result
from .images import WAIT_FIELD, ImageResult

if TYPE_CHECKING:
    from ..deps import Deps
    from ..tools import CallContext, ImageTools

POLL_AFTER_SECONDS = 5.0

JOB_ID_FIELD = Field(min_length=1, max_length=64, description="The job_id a generate_image/edit_image call returned.")


def _with_job(result: CallToolResult, job_id: str, record: dict[str, Any]) -> CallToolResult:
    structured = dict(result.structured_content or {})
    structured.update(job_id=job_id, status=record["status"])
    return CallToolResult(content=result.content, structured_content=structured, is_error=result.is_error)


class JobTools:
    """Renders job records as tool results; links are signed afresh on every read."""

    def __init__(self, deps: Deps, tools: ImageTools) -> None:
        self.deps = deps
        self.tools = tools
        self.jobs = JobService(deps, tools)

    async def start(
        self, call: CallContext, operation: str, wait_seconds: float | None, kwargs: dict[str, Any]
    ) -> CallToolResult:
        """Run a generate/edit call as a job and answer with its result, or its status when it is not done in time."""
        checked = {k: v for k, v in kwargs.items() if k != "preview"}
        await self.tools.check(call, **checked)  # a call refused outright leaves no job behind
        # Here, not when the job runs: with cloud-tasks that would count in a worker's bucket, not the caller's.
        self.deps.rate_limiter.check(call.caller.id)
        job_id = await self.jobs.submit(call, operation, kwargs)
        return await self.get(call, job_id, wait_seconds)

    async def get(self, call: CallContext, job_id: str, wait_seconds: float | None) -> CallToolResult:
        wait = self.deps.settings.wait_seconds if wait_seconds is None else wait_seconds
        # A client hanging up cancels only this wait: the job runs on for a later get_job.
        record = await self.jobs.wait(job_id, call.caller, wait, call.progress)
        return await self.render(job_id, record, call.base_url)

    async def cancel(self, call: CallContext, job_id: str) -> CallToolResult:
        record, cancelled = await self.jobs.cancel(job_id, call.caller)
        if cancelled:
            return _with_job(self._status_result(job_id, record), job_id, record)
        result = await self.render(job_id, record, call.base_url)
        note = TextContent(type="text", text=f"Job {job_id} had already ended ({record['status']}); nothing changed.")
        return CallToolResult(
            content=[note, *result.content], structured_content=result.structured_content, is_error=result.is_error
        )

    async def render(self, job_id: str, record: dict[str, Any], base_url: str | None) -> CallToolResult:
        status = record["status"]
        if status == model.JobStatus.SUCCEEDED.value:
            try:
                return _with_job(await self._images_result(record["result"], base_url), job_id, record)
            except ImageGenError as err:
                return _with_job(image_error_result(err), job_id, record)
        if status == model.JobStatus.FAILED.value:
            body = record["error"] or {}
            failure = ImageGenError(
                body.get("code", ErrorCode.INTERNAL.value),
                body.get("message", "the job failed"),
                retryable=body.get("retryable"),
                details=body.get("details"),
                retry_after_seconds=body.get("retry_after_seconds"),
            )
            return _with_job(image_error_result(failure), job_id, record)
        return _with_job(self._status_result(job_id, record), job_id, record)

    def _status_result(self, job_id: str, record: dict[str, Any]) -> CallToolResult:
        status = record["status"]
        structured: dict[str, Any] = {
            "images": [],
            "operation": record["operation"],
            "progress": record["progress"],
        }
        if record["request"].get("model"):
            structured["model"] = record["request"]["model"]
        if status == model.JobStatus.CANCELLED.value:
            text = f"Job {job_id} was cancelled; nothing was stored."
        else:
            structured["poll_after_seconds"] = POLL_AFTER_SECONDS
            text = (
                f"The image job is still {status} ({record['progress']}); it continues on the server. To get the "
                f'images, call get_job with {{"job_id": "{job_id}"}} (it waits up to wait_seconds for them); '
                f"cancel_job with the same job_id stops it."
            )
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    async def _images_result(self, result: dict[str, Any], base_url: str | None) -> CallToolResult:
        store, ttl = self.deps.store, self.deps.settings.url_ttl_seconds
        stored = result["images"]
        links = await asyncio.gather(*(store.sign(item["id"], ttl_seconds=ttl, base_url=base_url) for item in stored))
        prompt = result.get("prompt") or ""  # the echo keeps far more of the prompt than a file name uses
        items = [
            {**item, **link_fields(link, prompt, item["mime_type"], index=index, count=len(stored))}
            for index, (item, link) in enumerate(zip(stored, links, strict=True))
        ]
        structured = {k: v for k, v in result.items() if k != "preview"}
        structured["images"] = items
        return image_result(structured, result.get("preview"))


def register(surface: Surface) -> None:
    """Register get_job and cancel_job."""
    jobs = surface.jobs

    @surface.tool(
        name="get_job",
        error_fields=IMAGE_ERROR_FIELDS,
        title="Get image job",
        description=(
            "Wait up to wait_seconds for an image job (from generate_image/edit_image) and return its images "
            "(freshly signed links), or its status while it is still running."
        ),
        annotations=ToolAnnotations(
            title="Get image job",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def get_job(
        job_id: Annotated[str, JOB_ID_FIELD],
        ctx: Context,
        wait_seconds: Annotated[float | None, WAIT_FIELD] = None,
    ) -> Annotated[CallToolResult, ImageResult]:
        try:
            call = surface.call_context(ctx)
            return await jobs.get(call, job_id, wait_seconds)
        except ImageGenError as err:
            return image_error_result(err)

    @surface.tool(
        name="cancel_job",
        error_fields=IMAGE_ERROR_FIELDS,
        title="Cancel image job",
        description="Cancel a queued or running image job (nothing is stored); a finished job is left as it is.",
        annotations=ToolAnnotations(
            title="Cancel image job",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def cancel_job(job_id: Annotated[str, JOB_ID_FIELD], ctx: Context) -> Annotated[CallToolResult, ImageResult]:
        try:
            call = surface.call_context(ctx)
            return await jobs.cancel(call, job_id)
        except ImageGenError as err:
            return image_error_result(err)
