"""JobStore: job records in the StateStore, with every transition done as one conditional update."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ..state.base import StateStore
from . import model
from .model import COLLECTION


class JobStore:
    """Reads reconcile on the way out: a job whose lease or queue deadline passed is failed, durably, once."""

    def __init__(self, state: StateStore, *, retention_days: int, lease_seconds: float) -> None:
        self.state = state
        self.retention = timedelta(days=retention_days)
        self.lease = lease_seconds
        self._events: dict[str, asyncio.Event] = {}

    def watch(self, job_id: str) -> asyncio.Event:
        """An event set by this process's next change to the job; take it BEFORE reading, so no change is missed."""
        return self._events.setdefault(job_id, asyncio.Event())

    @staticmethod
    async def changed(event: asyncio.Event, within: float) -> None:
        """Return when `event` (from `watch`) is set, or after `within` seconds (other processes: by polling)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):  # wait_for would wrap the wait in one more task
                await event.wait()

    async def create(self, job_id: str, record: dict[str, Any]) -> None:
        expires = datetime.now(UTC) + self.retention
        if not await self.state.create(COLLECTION, job_id, record, expires_at=expires):
            raise RuntimeError(f"job id collision: {job_id}")

    async def _apply(self, job_id: str, change: Any) -> dict[str, Any] | None:
        doc = await self.state.update(COLLECTION, job_id, change)
        self.poke(job_id)
        return None if doc is None else doc.data

    def poke(self, job_id: str) -> None:
        """Wake this process's waiters on `job_id`."""
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    async def get(self, job_id: str) -> dict[str, Any] | None:
        doc = await self.state.get(COLLECTION, job_id)
        if doc is None:
            return None
        if model.expired_failure(doc.data, time.time()) is None:
            return doc.data
        return await self._apply(job_id, lambda r: None if r is None else model.expired_failure(r, time.time()))

    async def claim(self, job_id: str, worker: str) -> dict[str, Any] | None:
        """The record of the attempt this worker now holds, or None when it may not run the job."""
        record = await self._apply(job_id, lambda r: model.claim(r, worker=worker, lease=self.lease, now=time.time()))
        if record is None or not model.holds(record, worker, record["attempt"]):
            return None  # worker ids are unique per attempt, so holding it means this call claimed it
        return record

    async def renew(self, job_id: str, worker: str, attempt: int, **changes: Any) -> dict[str, Any] | None:
        """Extend the lease (and set progress / the started-upstream flag); returns the record as it now is."""
        return await self._apply(
            job_id,
            lambda r: model.renew(r, worker=worker, attempt=attempt, lease=self.lease, now=time.time(), **changes),
        )

    async def finish(self, job_id: str, worker: str, attempt: int, **outcome: Any) -> bool:
        """Record the outcome; False when the attempt lost the job meanwhile (cancelled, or its lease expired)."""
        record = await self._apply(
            job_id, lambda r: model.finish(r, worker=worker, attempt=attempt, now=time.time(), **outcome)
        )
        return record is not None and record.get("finished_by") == f"{worker}:{attempt}"

    async def cancel(self, job_id: str) -> dict[str, Any] | None:
        return await self._apply(job_id, lambda r: model.cancel(r, now=time.time()))
