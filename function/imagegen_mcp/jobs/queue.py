"""The JobQueue seam and its local backend: an in-process worker (asyncio tasks in the serving process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Claimed = tuple[str, dict[str, Any]]  # (worker id, the job's record as created: already claimed by that worker)
JobRun = Callable[[str, Claimed | None], Awaitable[str]]


class JobQueue(Protocol):
    """Gets a job run somewhere: `submit` hands it over; `attach` names what runs a job in this process."""

    name: str
    # submit runs the job in this process: a job may then be created already claimed (one write fewer per call)
    runs_in_process: bool

    def attach(self, run: JobRun) -> None: ...

    async def submit(self, job_id: str, claimed: Claimed | None = None) -> None:
        """Hand the job over; `claimed` only to a queue that runs it in this process."""
        ...

    async def run_here(self, job_id: str) -> str:
        """Run a delivered job inside the current request (the internal worker route)."""
        ...

    async def aclose(self) -> None: ...


class LocalJobQueue:
    """Jobs run as tasks of this process's event loop; closing cancels them (their records say so)."""

    name = "local"
    runs_in_process = True

    def __init__(self) -> None:
        self._run: JobRun | None = None
        self._tasks: set[asyncio.Task[str]] = set()

    def attach(self, run: JobRun) -> None:
        self._run = run

    async def submit(self, job_id: str, claimed: Claimed | None = None) -> None:
        if self._run is None:
            raise RuntimeError("no job runner attached")
        task = asyncio.create_task(self._guarded(job_id, claimed), name=f"job {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, job_id: str, claimed: Claimed | None = None) -> str:
        assert self._run is not None
        try:
            return await self._run(job_id, claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s crashed its worker", job_id)
            return "crashed"

    async def run_here(self, job_id: str) -> str:
        return await self._guarded(job_id)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
