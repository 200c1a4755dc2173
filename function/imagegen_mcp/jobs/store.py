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


class Change:
    """One wait for a job's next change in this process; once woken, it holds what that change left."""

    __slots__ = ("event", "progress_only", "record")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.progress_only = False
        self.record: dict[str, Any] | None = None

    def fresh_record(self, current: dict[str, Any]) -> dict[str, Any] | None:
        """The record a waiter goes on with without reading the store, or None when it must read it.

        Woken by a transition of this process: the record that transition wrote. Woken by progress alone:
        `current` (only a transition changes the record). Not woken (another process may have changed the job,
        which only a read shows), or a transition that left nothing usable: None.
        """
        if not self.event.is_set():
            return None
        if self.progress_only:
            return current
        if self.record is None or model.expired_failure(self.record, time.time()) is not None:
            return None
        return self.record


class JobStore:
    """Reads reconcile on the way out: a job whose lease or queue deadline passed is failed, durably, once."""

    def __init__(self, state: StateStore, *, retention_days: int, lease_seconds: float) -> None:
        self.state = state
        self.retention = timedelta(days=retention_days)
        self.lease = lease_seconds
        self._changes: dict[str, Change] = {}

    def watch(self, job_id: str) -> Change:
        """Set by this process's next change to the job; take it BEFORE reading, so no change is missed."""
        return self._changes.setdefault(job_id, Change())

    @staticmethod
    async def changed(change: Change, within: float) -> None:
        """Return when `change` (from `watch`) is set, or after `within` seconds (other processes: by polling)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):  # wait_for would wrap the wait in one more task
                await change.event.wait()

    async def create(self, job_id: str, record: dict[str, Any]) -> None:
        expires = datetime.now(UTC) + self.retention
        if not await self.state.create(COLLECTION, job_id, record, expires_at=expires):
            raise RuntimeError(f"job id collision: {job_id}")

    async def _apply(self, job_id: str, change: Any) -> dict[str, Any] | None:
        doc = await self.state.update(COLLECTION, job_id, change)
        record = None if doc is None else doc.data
        self._wake(job_id, record=record)
        return record

    def poke(self, job_id: str) -> None:
        """Wake this process's waiters on `job_id`: its progress moved (the record did not change)."""
        self._wake(job_id, progress_only=True)

    def _wake(self, job_id: str, *, record: dict[str, Any] | None = None, progress_only: bool = False) -> None:
        change = self._changes.pop(job_id, None)
        if change is not None:
            # Waiters only read the record they are handed (they render it into new objects).
            change.record, change.progress_only = record, progress_only
            change.event.set()

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
