"""Fake Secret Manager REST API (`GET /v1/projects/P/secrets/S/versions/V:access`) with rotation and failure knobs."""

from __future__ import annotations

import base64
import contextlib
import re
import threading
from collections.abc import Iterator, Mapping

import google_crc32c

from .http_fake import FakeApi, Recorded, Reply
from .iam_credentials_server import google_error

_ACCESS = re.compile(r"^/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)/versions/(?P<version>[^/:]+):access$")


class FakeSecretManager(FakeApi):
    """Secrets of one project; `set` adds a version (rotation), `deny`/`corrupt`/`delay` script failures."""

    def __init__(self, secrets: Mapping[str, str] | None = None, *, project: str = "test-project") -> None:
        super().__init__()
        self.project = project
        self.versions: dict[str, list[bytes]] = {}
        self.denied: set[str] = set()
        self.corrupted: set[str] = set()
        self.delay = 0.0
        self._state_lock = threading.Lock()
        for secret_id, value in (secrets or {}).items():
            self.set(secret_id, value)

    def set(self, secret_id: str, value: str | bytes) -> None:
        """Add a new version of `secret_id` (creating the secret): `latest` now answers it."""
        with self._state_lock:
            self.versions.setdefault(secret_id, []).append(value.encode() if isinstance(value, str) else value)

    def remove(self, secret_id: str) -> None:
        with self._state_lock:
            self.versions.pop(secret_id, None)

    def deny(self, secret_id: str) -> None:
        """Answer 403 PERMISSION_DENIED for `secret_id` (the caller lacks secretAccessor)."""
        self.denied.add(secret_id)

    def corrupt(self, secret_id: str) -> None:
        """Send `secret_id` with a wrong `dataCrc32c`."""
        self.corrupted.add(secret_id)

    def access_count(self, secret_id: str | None = None) -> int:
        """How many `:access` calls arrived (for one secret, or all)."""
        matches = (_ACCESS.match(r.path) for r in list(self.requests))
        return sum(1 for m in matches if m is not None and (secret_id is None or m["secret"] == secret_id))

    def handle(self, request: Recorded) -> Reply:
        match = _ACCESS.match(request.path)
        if request.method != "GET" or match is None:
            return google_error(404, "NOT_FOUND", f"no route {request.method} {request.path}")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return google_error(401, "UNAUTHENTICATED", "Request is missing required authentication credential.")
        project, secret_id, version = match["project"], match["secret"], match["version"]
        if secret_id in self.denied:
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'secretmanager.versions.access' denied for resource "
                f"'projects/{project}/secrets/{secret_id}/versions/{version}' (or it may not exist).",
            )
        with self._state_lock:
            versions = list(self.versions.get(secret_id, [])) if project == self.project else []
        if version == "latest" and versions:
            number, data = len(versions), versions[-1]
        elif version.isdigit() and 1 <= int(version) <= len(versions):
            number, data = int(version), versions[int(version) - 1]
        else:
            return google_error(
                404, "NOT_FOUND", f"Secret [projects/{project}/secrets/{secret_id}] not found or has no versions."
            )
        crc = google_crc32c.value(data) ^ (1 if secret_id in self.corrupted else 0)
        body = {
            "name": f"projects/{project}/secrets/{secret_id}/versions/{number}",
            "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc)},
        }
        return Reply(json=body, hang=self.delay)


@contextlib.contextmanager
def start_fake_secret_manager(
    secrets: Mapping[str, str] | None = None, *, project: str = "test-project"
) -> Iterator[tuple[str, FakeSecretManager]]:
    """Serve the fake on 127.0.0.1; yields (endpoint URL for IMAGEGEN_SECRET_MANAGER_ENDPOINT, fake).

    Point the source at it with `Settings(secrets="secret-manager", secret_manager_endpoint=url,
    secret_project=project)` and test credentials such as `google.oauth2.credentials.Credentials(token="t")`.
    """
    fake = FakeSecretManager(secrets, project=project)
    url = fake.start()
    try:
        yield url, fake
    finally:
        fake.stop()
