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
    """One waiter's watch on a job: what this process changed since the waiter last looked (`take`)."""

    __slots__ = ("event", "progress_only", "record")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.progress_only = False
        self.record: dict[str, Any] | None = None

    def note(self, record: dict[str, Any] | None, *, progress_only: bool) -> None:
        if not progress_only:
            self.record, self.progress_only = record, False  # the latest transition's record (None: read)
        elif not self.event.is_set():
            self.progress_only = True  # after a transition, progress leaves that transition's record standing
        self.event.set()

    def take(self, current: dict[str, Any]) -> dict[str, Any] | None:
        """The record to go on with without reading the store, or None when it must be read; then watch afresh.

        After a transition of this process: the record the last one wrote. After progress alone: `current` (only a
        transition changes the record). Nothing noted (another process may have changed the job, which only a read
        shows), or a transition that left nothing usable: None.
        """
        woken, progress_only, record = self.event.is_set(), self.progress_only, self.record
        self.event.clear()
        self.progress_only, self.record = False, None
        if not woken:
            return None
        if progress_only:
            return current
        if record is None or model.expired_failure(record, time.time()) is not None:
            return None
        return record


class JobStore:
    """Reads reconcile on the way out: a job whose lease or queue deadline passed is failed, durably, once."""

    def __init__(self, state: StateStore, *, retention_days: int, lease_seconds: float) -> None:
        self.state = state
        self.retention = timedelta(days=retention_days)
        self.lease = lease_seconds
        self._watches: dict[str, set[Change]] = {}

    def watch(self, job_id: str) -> Change:
        """Notes this process's changes to the job until `unwatch`; take it BEFORE reading, so none is missed."""
        change = Change()
        self._watches.setdefault(job_id, set()).add(change)
        return change

    def unwatch(self, job_id: str, change: Change) -> None:
        watches = self._watches.get(job_id)
        if watches is not None:
            watches.discard(change)
            if not watches:
                del self._watches[job_id]

    @staticmethod
    async def changed(change: Change, within: float) -> None:
        """Return when `change` (from `watch`) notes a change, or after `within` seconds (other processes: polling)."""
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
        # Waiters only read the record they are handed (they render it into new objects).
        for change in self._watches.get(job_id, ()):
            change.note(record, progress_only=progress_only)

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
