"""Local fake of the Cloud Tasks v2 REST API that really dispatches HTTP tasks with a signed OIDC token.

`tasks.create` (POST /v2/{queue}/tasks) as the google-cloud-tasks client sends it over transport="rest"; each
task is then POSTed to its `httpRequest.url` with `Authorization: Bearer <ID token>`, the token signed by a
test key standing in for Google's (publish it with tests/fakes/google_certs_server.py). Like the real queue
it retries non-2xx answers with backoff and caps concurrent dispatches (`max_concurrent_dispatches`).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

from tests.fakes.google_certs_server import SigningKey, id_token_claims
from tests.fakes.http_fake import FakeApi, Recorded, Reply, error_reply

# google.cloud.tasks_v2.HttpMethod: the REST transport sends enum numbers (the API also takes names).
_METHODS = {0: "POST", 1: "POST", 2: "GET", 3: "HEAD", 4: "PUT", 5: "DELETE", 6: "PATCH", 7: "OPTIONS"}
_CREATE = re.compile(r"/v2/(projects/[^/]+/locations/[^/]+/queues/[^/]+)/tasks")


def _status_error(status: int, grpc_status: str, message: str) -> Reply:
    return Reply(status=status, json={"error": {"code": status, "message": message, "status": grpc_status}})


@dataclass
class Dispatch:
    """One delivery attempt of a task: the HTTP status the target answered (0: no answer)."""

    task: str
    status: int


@dataclass
class FakeTask:
    name: str
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    oidc: dict[str, str]
    deadline: float | None = None
    attempts: list[int] = field(default_factory=list)


class FakeCloudTasks(FakeApi):
    def __init__(
        self,
        signer: SigningKey,
        *,
        max_concurrent_dispatches: int = 10,
        max_attempts: int = 5,
        min_backoff: float = 0.2,
        dispatch_deadline: float = 120.0,
    ) -> None:
        super().__init__(key=None)
        self.signer = signer
        self.max_attempts = max_attempts
        self.min_backoff = min_backoff
        self.dispatch_deadline = dispatch_deadline
        self.tasks: dict[str, FakeTask] = {}
        self.dispatches: list[Dispatch] = []
        self._slots = threading.BoundedSemaphore(max_concurrent_dispatches)
        self._tasks_lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def handle(self, request: Recorded) -> Reply:
        match = _CREATE.fullmatch(request.path)
        if request.method != "POST" or match is None:
            return error_reply(404, f"no such method {request.method} {request.path}")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _status_error(401, "UNAUTHENTICATED", "request had no credentials")
        queue = match.group(1)
        raw = (request.json() or {}).get("task") or {}
        http = raw.get("httpRequest") or {}
        oidc = http.get("oidcToken") or {}
        if not http.get("url") or not oidc.get("serviceAccountEmail"):
            return _status_error(400, "INVALID_ARGUMENT", "task needs httpRequest.url and an oidcToken")
        method = http.get("httpMethod", "POST")
        name = raw.get("name") or f"{queue}/tasks/{len(self.tasks) + 1}"
        if not name.startswith(f"{queue}/tasks/"):
            return _status_error(400, "INVALID_ARGUMENT", "task name must be inside the queue")
        task = FakeTask(
            name=name,
            url=http["url"],
            method=_METHODS.get(method, "?") if isinstance(method, int) else str(method),
            headers=dict(http.get("headers") or {}),
            body=base64.b64decode(http.get("body") or ""),
            oidc={"email": oidc["serviceAccountEmail"], "audience": oidc.get("audience") or http["url"]},
        )
        with self._tasks_lock:
            if name in self.tasks:
                return _status_error(409, "ALREADY_EXISTS", "the task already exists")
            self.tasks[name] = task
        deadline = raw.get("dispatchDeadline")
        if deadline is not None:
            seconds = float(str(deadline).rstrip("s"))
            if not 15 <= seconds <= 1800:
                return _status_error(400, "INVALID_ARGUMENT", "dispatchDeadline must be between 15s and 30m")
            task.deadline = seconds
        threading.Thread(target=self._deliver, args=(task,), daemon=True).start()
        return Reply(json={"name": name, "httpRequest": http, "dispatchCount": 0, "responseCount": 0})

    def _deliver(self, task: FakeTask) -> None:
        backoff = self.min_backoff
        for _ in range(self.max_attempts):
            with self._slots:
                with self._tasks_lock:
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                status = self._attempt(task)
                with self._tasks_lock:
                    self.in_flight -= 1
                    task.attempts.append(status)
                    self.dispatches.append(Dispatch(task.name, status))
            if 200 <= status < 300:
                return
            time.sleep(backoff)
            backoff *= 2

    def _attempt(self, task: FakeTask) -> int:
        token = self.signer.sign(id_token_claims(task.oidc["audience"], email=task.oidc["email"]))
        headers = {**task.headers, "Authorization": f"Bearer {token}", "User-Agent": "Google-Cloud-Tasks"}
        try:
            answer = httpx2.request(
                task.method,
                task.url,
                headers=headers,
                content=task.body,
                timeout=task.deadline or self.dispatch_deadline,
            )
        except httpx2.HTTPError:
            return 0
        return answer.status_code

    def delivered(self) -> dict[str, list[int]]:
        with self._tasks_lock:
            return {name: list(task.attempts) for name, task in self.tasks.items()}

    def task_body(self, name: str) -> Any:
        import json

        return json.loads(self.tasks[name].body)
