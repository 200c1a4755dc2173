"""JobService: create a job for a call, wait for it (relaying progress), read it back for its owner, cancel it."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from ..state.base import DocumentTooLarge
from . import model
from .runner import JobRunner, owner_record, request_record
from .store import Change, JobStore

if TYPE_CHECKING:
    from ..access.caller import Caller
    from ..deps import Deps
    from ..tools import CallContext, ImageTools, ProgressSink

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 5.0  # a progress notification at least this often, so idle timers (Claude Code's) keep resetting


def _not_found(job_id: str) -> ImageGenError:
    return ImageGenError(ErrorCode.NOT_FOUND, f"no job {job_id!r} (it may have expired, or belong to someone else)")


class JobService:
    """The job side of the tools, the same whichever queue and state backends `build_deps` chose."""

    def __init__(self, deps: Deps, tools: ImageTools) -> None:
        settings = deps.settings
        self.settings = settings
        self.store = JobStore(
            deps.state, retention_days=settings.retention_days, lease_seconds=settings.job_lease_seconds
        )
        self.runner = JobRunner(deps, tools, self.store)
        self.queue = deps.job_queue
        self.queue.attach(self.runner.run)

    async def submit(self, call: CallContext, operation: str, kwargs: dict[str, Any]) -> str:
        job_id = model.new_job_id()
        record = model.new_record(
            owner=owner_record(call.caller),
            operation=operation,
            request=request_record(kwargs),
            request_id=call.request_id,
            queue_timeout=self.settings.job_queue_timeout_seconds,
        )
        record["base_url"] = call.base_url
        # A queue that runs the job in this process gets it created already claimed: no claim write to follow.
        claimed = self.runner.claim_new(record) if self.queue.runs_in_process else None
        try:
            # The store measures the record as it serializes it (off the loop when it is large).
            await self.store.create(job_id, record if claimed is None else claimed[1])
        except DocumentTooLarge as exc:
            raise ImageGenError(
                ErrorCode.INVALID_ARGUMENT,
                f"the call is {exc.size} bytes, more than a job record holds here ({exc.limit}): pass large input "
                "images as https URLs, gs:// URIs or ids of earlier outputs instead of inline base64",
            ) from exc
        try:
            await self.queue.submit(job_id, claimed)
        except BaseException:
            await asyncio.shield(self.store.cancel(job_id))
            raise
        return job_id

    async def get(self, job_id: str, caller: Caller) -> dict[str, Any]:
        """The job, for its owner only: anyone else learns nothing, not even that it exists."""
        record = await self.store.get(job_id) if job_id.startswith("job_") else None
        if record is None or (record["owner"]["id"], record["owner"]["kind"]) != (caller.id, caller.kind):
            raise _not_found(job_id)
        return record

    async def wait(
        self, job_id: str, caller: Caller, wait_seconds: float, progress: ProgressSink | None
    ) -> dict[str, Any]:
        """Up to `wait_seconds` for the job to end; a progress notification on each new message, at least every 5 s."""
        change = self.store.watch(job_id)
        try:
            return await self._wait(job_id, caller, change, wait_seconds, progress)
        finally:
            self.store.unwatch(job_id, change)

    async def _wait(
        self, job_id: str, caller: Caller, change: Change, wait_seconds: float, progress: ProgressSink | None
    ) -> dict[str, Any]:
        record = await self.get(job_id, caller)
        deadline = time.monotonic() + wait_seconds
        told: str | None = None
        told_at = 0.0
        step = 0
        while True:
            message = self.runner.live_progress(job_id) or record["progress"]
            if progress is not None and (message != told or time.monotonic() - told_at >= HEARTBEAT_SECONDS):
                told, told_at = message, time.monotonic()
                step += 1
                try:
                    await progress(step, message)
                except Exception:  # a client that stopped listening must not end the wait
                    progress = None
            remaining = deadline - time.monotonic()
            if record["status"] not in model.ACTIVE or remaining <= 0:
                return record
            await self.store.changed(change, min(POLL_SECONDS, remaining))
            fresh = change.take(record)  # the owner was checked by the first read; it never changes
            record = fresh if fresh is not None else await self.get(job_id, caller)

    async def cancel(self, job_id: str, caller: Caller) -> tuple[dict[str, Any], bool]:
        """Cancel the job if it is still queued or running; returns its record and whether this call cancelled it."""
        before = await self.get(job_id, caller)
        if before["status"] not in model.ACTIVE:
            return before, False
        after = await self.store.cancel(job_id)
        if after is None:
            raise _not_found(job_id)
        self.runner.abandon(job_id)  # a worker in this process stops at once; others notice within a second
        return after, after["status"] == model.JobStatus.CANCELLED.value and before["status"] in model.ACTIVE
