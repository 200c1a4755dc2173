"""The job record and its state machine: pure functions from one record to the next (StateStore mutations)."""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Any

from ..errors import ErrorCode, ImageGenError

COLLECTION = "jobs"


class JobStatus(StrEnum):
    """Public status values of a job (a contract, like error codes)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = {JobStatus.QUEUED.value, JobStatus.RUNNING.value}


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex}"


def new_record(
    *,
    owner: dict[str, Any],
    operation: str,
    request: dict[str, Any],
    request_id: str,
    queue_timeout: float,
    now: float | None = None,
) -> dict[str, Any]:
    """A queued job. `request` holds the tool arguments; `owner` the caller who may see it."""
    now = time.time() if now is None else now
    return {
        "owner": owner,
        "operation": operation,
        "request": request,
        "request_id": request_id,
        "status": JobStatus.QUEUED.value,
        "progress": "queued",
        "created_at": now,
        "updated_at": now,
        "queue_deadline": now + queue_timeout,
        "attempt": 0,
        "worker": None,
        "lease_expires_at": None,
        "upstream_started": False,
        "result": None,
        "error": None,
    }


def _with(record: dict[str, Any], now: float, **changes: Any) -> dict[str, Any]:
    return {**record, **changes, "updated_at": now}


def expired_failure(record: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The failed record a dead worker or a never-picked job turns into, or None while it is healthy."""
    status = record["status"]
    if status == JobStatus.QUEUED.value and now > record["queue_deadline"]:
        error = ImageGenError(ErrorCode.INTERNAL, "no worker picked this job up in time; nothing was generated")
    elif status == JobStatus.RUNNING.value and now > (record["lease_expires_at"] or 0):
        if record["upstream_started"]:
            error = ImageGenError(
                ErrorCode.UPSTREAM_ERROR,
                "the worker running this job stopped after calling the model; the job is not retried because the "
                "generation may have been billed",
                retryable=True,
            )
        else:
            error = ImageGenError(
                ErrorCode.INTERNAL, "the worker running this job stopped before calling the model", retryable=True
            )
    else:
        return None
    return _with(record, now, status=JobStatus.FAILED.value, error=error.to_dict(), progress="failed")


def claim(record: dict[str, Any] | None, *, worker: str, lease: float, now: float) -> dict[str, Any] | None:
    """Start an attempt: a queued job, or a running one whose dead attempt provably never reached the upstream."""
    if record is None:
        return None
    status = record["status"]
    retake = (
        status == JobStatus.RUNNING.value and now > (record["lease_expires_at"] or 0) and not record["upstream_started"]
    )
    if not (status == JobStatus.QUEUED.value and now <= record["queue_deadline"]) and not retake:
        return None
    return _with(
        record,
        now,
        status=JobStatus.RUNNING.value,
        attempt=record["attempt"] + 1,
        worker=worker,
        lease_expires_at=now + lease,
        progress="started",
    )


def holds(record: dict[str, Any] | None, worker: str, attempt: int) -> bool:
    """Whether this worker's attempt still owns the running job."""
    return (
        record is not None
        and record["status"] == JobStatus.RUNNING.value
        and record["worker"] == worker
        and record["attempt"] == attempt
    )


def renew(
    record: dict[str, Any] | None,
    *,
    worker: str,
    attempt: int,
    lease: float,
    now: float,
    progress: str | None = None,
    upstream_started: bool | None = None,
) -> dict[str, Any] | None:
    if not holds(record, worker, attempt):
        return None
    assert record is not None
    changes: dict[str, Any] = {"lease_expires_at": now + lease}
    if progress is not None:
        changes["progress"] = progress
    if upstream_started is not None:
        changes["upstream_started"] = upstream_started
    return _with(record, now, **changes)


def finish(
    record: dict[str, Any] | None,
    *,
    worker: str,
    attempt: int,
    now: float,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    progress: str | None = None,
) -> dict[str, Any] | None:
    if not holds(record, worker, attempt):
        return None
    assert record is not None
    status = JobStatus.SUCCEEDED if error is None else JobStatus.FAILED
    return _with(
        record,
        now,
        status=status.value,
        result=result,
        error=error,
        progress=progress or status.value,
        finished_by=f"{worker}:{attempt}",
    )


def cancel(record: dict[str, Any] | None, *, now: float) -> dict[str, Any] | None:
    if record is None or record["status"] not in ACTIVE:
        return None
    return _with(record, now, status=JobStatus.CANCELLED.value, progress="cancelled")
