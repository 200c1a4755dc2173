"""CloudTasksQueue: each job becomes a Cloud Tasks HTTP task that POSTs to this service's internal worker route."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ImageGenError
from .queue import Claimed, JobRun

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from ..config import Settings

WORKER_PATH = "/internal/jobs/run"


def worker_audience(settings: Settings) -> str:
    """The OIDC audience of the tasks' tokens: the service's base URL."""
    base = settings.tasks_worker_url or settings.public_url
    if not base:
        raise ImageGenError(
            ErrorCode.MISCONFIGURED, "IMAGEGEN_JOBS=cloud-tasks needs IMAGEGEN_TASKS_WORKER_URL or IMAGEGEN_PUBLIC_URL"
        )
    return base.rstrip("/")


class CloudTasksQueue:
    """The task is named after the job, so a repeated submit cannot queue the job twice."""

    name = "cloud-tasks"
    runs_in_process = False

    def __init__(self, settings: Settings, *, credentials: Credentials | None = None) -> None:
        assert settings.tasks_queue and settings.tasks_service_account  # Settings refuses cloud-tasks without them
        self._settings = settings
        self._queue = settings.tasks_queue
        self._audience = worker_audience(settings)
        self._credentials = credentials
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._run: JobRun | None = None

    def attach(self, run: JobRun) -> None:
        self._run = run

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                from google.cloud import tasks_v2  # heavy SDK: imported on the first job

                options = {"api_endpoint": self._settings.tasks_endpoint} if self._settings.tasks_endpoint else None
                self._client = tasks_v2.CloudTasksClient(
                    credentials=self._credentials, transport="rest", client_options=options
                )
            return self._client

    def _create(self, job_id: str) -> None:
        from google.api_core import exceptions as gexc

        task = {
            "name": f"{self._queue}/tasks/{job_id}",
            "dispatch_deadline": {"seconds": self._settings.tasks_dispatch_deadline_seconds},
            "http_request": {
                "http_method": "POST",
                "url": f"{self._audience}{WORKER_PATH}",
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"job_id": job_id}).encode(),
                "oidc_token": {
                    "service_account_email": self._settings.tasks_service_account,
                    "audience": self._audience,
                },
            },
        }
        try:
            self._get_client().create_task(parent=self._queue, task=task, timeout=20.0)
        except gexc.AlreadyExists:
            return  # queued already (a retried submit)
        except gexc.GoogleAPIError as exc:
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR, "could not queue the job; nothing was generated", retryable=True
            ) from exc

    async def submit(self, job_id: str, claimed: Claimed | None = None) -> None:
        if claimed is not None:
            raise ValueError("a Cloud Tasks job is claimed by the worker it is delivered to")
        await asyncio.to_thread(self._create, job_id)

    async def run_here(self, job_id: str) -> str:
        if self._run is None:
            raise RuntimeError("no job runner attached")
        return await self._run(job_id, None)

    async def aclose(self) -> None:
        client = self._client
        if client is not None:
            await asyncio.to_thread(client.transport.close)
