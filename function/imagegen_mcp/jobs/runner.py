"""JobRunner: runs one job's generation (ImageTools.run) while holding its lease, and records the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from .. import base64_codec
from ..access.caller import Caller
from ..catalog import GenerationOptions
from ..errors import ErrorCode, ImageGenError
from ..images.download import LINK_FIELDS
from ..tools import CallContext, ImageOutcome, ImageTools
from . import model
from .queue import Claimed
from .store import JobStore

if TYPE_CHECKING:
    from ..deps import Deps

log = logging.getLogger(__name__)
WATCH_INTERVAL_SECONDS = 1.0


def owner_record(caller: Caller) -> dict[str, Any]:
    allowed = sorted(caller.allowed_models) if caller.allowed_models is not None else None
    return {"id": caller.id, "kind": caller.kind, "label": caller.label, "allowed_models": allowed}


def _caller(owner: dict[str, Any]) -> Caller:
    allowed = owner.get("allowed_models")
    return Caller(owner["id"], owner["kind"], owner.get("label"), None if allowed is None else frozenset(allowed))


def request_record(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Tool arguments as JSON (what a worker on another instance needs to run the job)."""
    return {**kwargs, "options": dataclasses.asdict(kwargs["options"])}


def _request_kwargs(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "options": GenerationOptions(**request["options"])}


def _result_record(outcome: ImageOutcome) -> dict[str, Any]:
    """The finished generation without its links (nor the download lines holding them): they are signed afresh."""
    structured = dict(outcome.structured)
    structured["images"] = [{k: v for k, v in item.items() if k not in LINK_FIELDS} for item in structured["images"]]
    if outcome.preview is not None:
        data, mime = outcome.preview
        structured["preview"] = {"data": base64_codec.encode_text(data), "mime_type": mime}
    return structured


def _new_worker() -> str:
    return uuid.uuid4().hex[:12]


class _Attempt:
    """One attempt's bookkeeping: the latest progress message and whether the job was taken away."""

    def __init__(self, job_id: str, worker: str, attempt: int) -> None:
        self.job_id, self.worker, self.attempt = job_id, worker, attempt
        self.progress = "started"
        self.published = "started"  # the progress the record holds
        self.renewed_at = time.monotonic()  # when the lease was last extended
        self.lost = False
        self.task = asyncio.current_task()

    def renewed(self, progress: str) -> None:
        self.published, self.renewed_at = progress, time.monotonic()


class JobRunner:
    """Any process may run any job; the lease in the record decides which attempt holds it."""

    def __init__(self, deps: Deps, tools: ImageTools, store: JobStore) -> None:
        self.deps = deps
        self.tools = tools
        self.store = store
        self.watch_interval = min(WATCH_INTERVAL_SECONDS, store.lease / 10)
        self._attempts: dict[str, _Attempt] = {}

    def live_progress(self, job_id: str) -> str | None:
        """The latest progress of an attempt running in this process (fresher than the stored one)."""
        attempt = self._attempts.get(job_id)
        return None if attempt is None else attempt.progress

    def abandon(self, job_id: str) -> bool:
        """Stop this process's attempt at `job_id` (cancelled or lost): the upstream request is dropped."""
        attempt = self._attempts.get(job_id)
        if attempt is None or attempt.task is None:
            return False
        attempt.lost = True
        attempt.task.cancel()
        return True

    def claim_new(self, record: dict[str, Any]) -> Claimed:
        """A new job's record as claimed by a fresh worker of this process, for a queue that runs it here."""
        worker = _new_worker()
        claimed = model.claim(record, worker=worker, lease=self.store.lease, now=time.time())
        if claimed is None:
            raise ValueError("only a queued job can be claimed")
        return worker, claimed

    async def run(self, job_id: str, claimed: Claimed | None = None) -> str:
        """Run the job if it may run here (`claimed`: created so); returns what happened: ran, skipped or lost."""
        if claimed is not None:
            worker, record = claimed
        else:
            worker = _new_worker()
            found = await self.store.claim(job_id, worker)
            if found is None:
                return "skipped"
            record = found
        attempt = _Attempt(job_id, worker, record["attempt"])
        self._attempts[job_id] = attempt
        watcher = asyncio.create_task(self._watch(attempt))
        try:
            return await self._run(attempt, record)
        except asyncio.CancelledError:
            if not attempt.lost:  # the process is stopping: say so now instead of waiting for the lease
                await asyncio.shield(self._record_stop(attempt))
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return "lost"
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._attempts.pop(job_id, None)

    async def _run(self, attempt: _Attempt, record: dict[str, Any]) -> str:
        async def progress(step: float, message: str) -> None:
            attempt.progress = message
            self.store.poke(attempt.job_id)  # waiters in this process relay it now; the watcher persists it

        async def before_upstream() -> None:
            message = attempt.progress
            current = await self.store.renew(
                attempt.job_id, attempt.worker, attempt.attempt, upstream_started=True, progress=message
            )
            attempt.renewed(message)  # the watcher has nothing to write until the progress moves on
            if not model.holds(current, attempt.worker, attempt.attempt):
                self.abandon(attempt.job_id)
                await asyncio.sleep(0)  # deliver the cancellation before any upstream byte is sent

        call = CallContext(
            caller=_caller(record["owner"]),
            request_id=record["request_id"],
            base_url=record.get("base_url"),
            progress=progress,
            before_upstream=before_upstream,
            job_id=attempt.job_id,
        )
        try:
            outcome = await self.tools.run(call, **_request_kwargs(record["request"]))
        except ImageGenError as err:
            await self.store.finish(attempt.job_id, attempt.worker, attempt.attempt, error=err.to_dict())
            return "ran"
        except Exception:
            log.exception("job %s failed unexpectedly", attempt.job_id)
            error = ImageGenError(
                ErrorCode.INTERNAL, f"internal error; reference {record['request_id']}", retryable=True
            )
            await self.store.finish(attempt.job_id, attempt.worker, attempt.attempt, error=error.to_dict())
            return "ran"
        result = _result_record(outcome)
        finished = await self.store.finish(
            attempt.job_id, attempt.worker, attempt.attempt, result=result, progress=attempt.progress
        )
        if not finished:
            # Cancelled (or lease lost) while the images were being stored: nobody may see them, so remove them.
            await self.tools._discard([stored for stored, _, _ in outcome.images])
            return "lost"
        return "ran"

    async def _record_stop(self, attempt: _Attempt) -> None:
        error = ImageGenError(ErrorCode.INTERNAL, "the server stopped while running this job", retryable=True)
        try:
            await self.store.finish(attempt.job_id, attempt.worker, attempt.attempt, error=error.to_dict())
        except Exception:
            log.warning("could not record the stop of job %s; its lease will expire", attempt.job_id)

    async def _watch(self, attempt: _Attempt) -> None:
        """Renew the lease, publish progress, and notice a cancel (or a lost lease) from any process."""
        renew_every = self.store.lease / 3
        while True:
            await asyncio.sleep(self.watch_interval)
            try:
                if attempt.progress != attempt.published or time.monotonic() - attempt.renewed_at >= renew_every:
                    message = attempt.progress
                    current = await self.store.renew(attempt.job_id, attempt.worker, attempt.attempt, progress=message)
                    attempt.renewed(message)
                else:
                    current = await self.store.get(attempt.job_id)
            except Exception:
                log.warning("could not renew the lease of job %s", attempt.job_id, exc_info=True)
                continue
            if not model.holds(current, attempt.worker, attempt.attempt):
                self.abandon(attempt.job_id)
                return
