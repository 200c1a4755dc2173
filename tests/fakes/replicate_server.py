"""Local fake of Replicate's predictions API (create with `Prefer: wait`, get, cancel), with hosted output files."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from typing import Any

from tests.fakes.http_fake import FakeApi, Recorded, Reply, make_image

DEFAULT_KEY = "r8_fake0123456789abcdefABCDEF"
_CREATE = re.compile(r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$")
_GET = re.compile(r"^/v1/predictions/(?P<id>[A-Za-z0-9]+)$")
_CANCEL = re.compile(r"^/v1/predictions/(?P<id>[A-Za-z0-9]+)/cancel$")
_EXT = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


class FakeReplicate(FakeApi):
    """Predictions finish after `polls_needed` GETs (0: already done in the create answer, as with `Prefer: wait`).

    fail_with: make predictions end `failed` with this error; output_list: answer `output` as a list of URLs;
    no_output: succeed with `output: null`.
    """

    def __init__(
        self,
        *,
        key: str | None = DEFAULT_KEY,
        polls_needed: int = 0,
        fail_with: str | None = None,
        output_list: bool = False,
        no_output: bool = False,
    ) -> None:
        super().__init__(key=key)
        self.polls_needed = polls_needed
        self.fail_with = fail_with
        self.output_list = output_list
        self.no_output = no_output
        self.predictions: dict[str, dict[str, Any]] = {}
        self._polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.cancelled: list[str] = []

    def _view(self, pid: str) -> dict[str, Any]:
        return dict(self.predictions[pid])

    def _finish(self, pid: str) -> None:
        prediction = self.predictions[pid]
        if self.fail_with is not None:
            prediction.update(status="failed", error=self.fail_with, output=None)
            return
        fmt = str(prediction["input"].get("output_format") or "webp")
        pil_format, mime = _EXT.get(fmt, _EXT["webp"])
        url = self.host_file(make_image(48, 32, pil_format), mime, name=f"{pid}.{fmt}")
        output: Any = None if self.no_output else [url] if self.output_list else url
        prediction.update(status="succeeded", output=output, completed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def handle(self, request: Recorded) -> Reply:
        if not self.authorized(request):
            return Reply(
                status=401,
                json={
                    "title": "Unauthenticated",
                    "detail": "You did not pass a valid authentication token",
                    "status": 401,
                },
            )
        if request.method == "POST" and (match := _CREATE.match(request.path)):
            body = request.json()
            if not isinstance(body.get("input"), dict) or not body["input"].get("prompt"):
                return Reply(
                    status=422,
                    json={
                        "title": "Input validation failed",
                        "status": 422,
                        "detail": "- input: prompt is required",
                        "invalid_fields": [
                            {"type": "required", "field": "input.prompt", "description": "prompt is required"}
                        ],
                    },
                )
            pid = f"fake{next(self._ids):06d}q"
            self.predictions[pid] = {
                "id": pid,
                "model": f"{match['owner']}/{match['name']}",
                "version": "hidden",
                "input": body["input"],
                "status": "starting",
                "output": None,
                "error": None,
                "urls": {
                    "get": f"{self.base}/v1/predictions/{pid}",
                    "cancel": f"{self.base}/v1/predictions/{pid}/cancel",
                },
            }
            self._polls[pid] = 0
            if self.polls_needed == 0:
                self._finish(pid)
            return Reply(status=201, json=self._view(pid))
        if request.method == "GET" and (match := _GET.match(request.path)):
            pid = match["id"]
            if pid not in self.predictions:
                return Reply(status=404, json={"detail": "Not found.", "status": 404})
            if self.predictions[pid]["status"] not in ("succeeded", "failed", "canceled"):
                self._polls[pid] += 1
                self.predictions[pid]["status"] = "processing"
                if self._polls[pid] >= self.polls_needed:
                    self._finish(pid)
            return Reply(json=self._view(pid))
        if request.method == "POST" and (match := _CANCEL.match(request.path)):
            pid = match["id"]
            if pid not in self.predictions:
                return Reply(status=404, json={"detail": "Not found.", "status": 404})
            self.cancelled.append(pid)
            self.predictions[pid]["status"] = "canceled"
            return Reply(json=self._view(pid))
        return Reply(status=404, json={"detail": "Not found.", "status": 404})


def start_fake_replicate(**options: Any) -> contextlib.AbstractContextManager[tuple[str, FakeReplicate]]:
    """Run a FakeReplicate on 127.0.0.1 for the block; yields (base URL ending in /v1, fake)."""
    return FakeReplicate(**options).running("/v1")  # type: ignore[return-value]


if __name__ == "__main__":
    with start_fake_replicate(polls_needed=2) as (url, _fake):
        print(url, flush=True)
        threading.Event().wait()
