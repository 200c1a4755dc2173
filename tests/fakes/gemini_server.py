"""Local fake of the `:generateContent` REST API (Vertex AI and Gemini Developer API) for tests and benchmarks."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from typing import Any

from .http_fake import send_payload, serve_handler

# POST /{version}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent (Vertex AI)
# POST /{version}/models/{model}:generateContent (Gemini Developer API)
_VERTEX_PATH = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):generateContent$"
)
_DEVELOPER_PATH = re.compile(r"^/(?P<version>v1[a-z0-9]*)/models/(?P<model>[^/:]+):generateContent$")


# --- images ------------------------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=32)
def make_png(
    width: int = 64, height: int = 64, color: tuple[int, int, int] = (200, 30, 60), noise: bool = False
) -> bytes:
    """A real RGB PNG; `noise=True` makes it incompressible (realistic byte sizes for benchmarks)."""
    if noise:
        import random

        rng = random.Random(width * 100_003 + height)  # deterministic per size
        rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    else:
        rows = (b"\x00" + bytes(color) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = _chunk(b"IDAT", zlib.compress(rows, 6))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + idat + _chunk(b"IEND", b"")


# --- scripted replies --------------------------------------------------------------------------------------------
@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def image_part(png: bytes, *, thought: bool = False, mime_type: str = "image/png") -> dict[str, Any]:
    part: dict[str, Any] = {"inlineData": {"mimeType": mime_type, "data": base64.b64encode(png).decode()}}
    if thought:
        part["thought"] = True
    return part


def candidates_body(parts: list[dict[str, Any]], finish_reason: str = "STOP", **candidate: Any) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_reason, **candidate}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302},
        "modelVersion": "fake-gemini-image",
    }


def image_reply(
    png: bytes | None = None,
    *,
    text: str | None = None,
    thought_images: list[bytes] = (),  # type: ignore[assignment]
    delay: float = 0.0,
) -> Reply:
    """A successful answer: optional thought images first (as the real models send them), then text, then the image."""
    parts: list[dict[str, Any]] = [image_part(t, thought=True) for t in thought_images]
    if thought_images:
        parts.insert(0, {"text": "Planning the composition…", "thought": True})
    if text:
        parts.append({"text": text})
    parts.append(image_part(png if png is not None else make_png()))
    return Reply(body=candidates_body(parts), delay=delay)


def prompt_blocked_reply(reason: str = "SAFETY", message: str | None = None) -> Reply:
    feedback: dict[str, Any] = {"blockReason": reason}
    if message:
        feedback["blockReasonMessage"] = message
    return Reply(body={"promptFeedback": feedback, "modelVersion": "fake-gemini-image"})


def output_blocked_reply(finish_reason: str = "IMAGE_SAFETY", message: str | None = None) -> Reply:
    extra = {"finishMessage": message} if message else {}
    return Reply(body=candidates_body([], finish_reason=finish_reason, **extra))


def text_only_reply(text: str, finish_reason: str = "STOP") -> Reply:
    return Reply(body=candidates_body([{"text": text}], finish_reason=finish_reason))


def error_reply(
    status: int,
    google_status: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Reply:
    """An error in Google's JSON error shape."""
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    if details:
        error["details"] = details
    return Reply(status=status, body={"error": error}, headers=headers or {})


# --- the server --------------------------------------------------------------------------------------------------
@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    api: str  # "vertex" or "developer"
    model: str
    version: str
    project: str | None = None
    location: str | None = None

    @property
    def parts(self) -> list[dict[str, Any]]:
        return [part for content in self.body.get("contents", []) for part in content.get("parts", [])]

    @property
    def inline_images(self) -> list[tuple[str, bytes]]:
        """(MIME type, bytes) of each inline image sent; proto JSON allows camelCase or snake_case keys."""
        found = []
        for part in self.parts:
            blob = part.get("inlineData", part.get("inline_data"))
            if blob is not None:
                mime = blob.get("mimeType", blob.get("mime_type", ""))
                data = str(blob.get("data", "")).replace("-", "+").replace("_", "/")  # the SDK sends URL-safe base64
                found.append((mime, base64.b64decode(data + "=" * (-len(data) % 4))))
        return found

    @property
    def generation_config(self) -> dict[str, Any]:
        return dict(self.body.get("generationConfig", {}))


class FakeGemini:
    """State of one fake: recorded requests, a queue of scripted replies, and the default reply."""

    def __init__(
        self,
        *,
        image_size: tuple[int, int] = (64, 64),
        noise: bool = False,
        delay: float = 0.0,
        api_keys: tuple[str, ...] = ("test-gemini-key",),
        accept_bearer: Callable[[str], bool] | None = None,
    ) -> None:
        self.image_size = image_size
        self.noise = noise
        self.delay = delay
        self.api_keys = api_keys
        # Vertex calls need `Authorization: Bearer <token>` with a token this accepts (default: any non-empty one).
        self.accept_bearer = accept_bearer or (lambda token: bool(token))
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.closing = threading.Event()
        # models.list (GET /{version}/models) answers from this list, paged; `list_failures` answers 500 that often.
        self.listed_models: list[dict[str, Any]] = [dict(m) for m in DEFAULT_LISTED_MODELS]
        self.list_failures = 0
        self.list_calls = 0

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order; once the queue is empty, the default image reply is used."""
        with self._lock:
            self._script.extend(replies)

    def default_reply(self) -> Reply:
        width, height = self.image_size
        return image_reply(make_png(width, height, noise=self.noise), delay=self.delay)

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        return self.default_reply()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()


def listed_model(
    name: str, display: str, methods: tuple[str, ...] = ("generateContent", "countTokens")
) -> dict[str, Any]:
    """A `Model` resource as models.list returns it (Gemini Developer API wire format)."""
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "001",
        "displayName": display,
        "description": f"{display} (fake listing)",
        "inputTokenLimit": 65536,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": list(methods),
    }


DEFAULT_LISTED_MODELS = (
    listed_model("gemini-3-pro-image", "Gemini 3 Pro Image"),
    listed_model("gemini-3.1-flash-image", "Gemini 3.1 Flash Image"),
    listed_model("gemini-3-flash", "Gemini 3 Flash"),
    listed_model("gemini-embedding-001", "Gemini Embedding", ("embedContent",)),
)
_LIST_PATH = re.compile(r"^/(?P<version>v1[a-z0-9]*)/models$")


def _handler(fake: FakeGemini) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, reply: Reply) -> None:
            payload = json.dumps(reply.body if reply.body is not None else {}).encode()
            send_payload(self, reply.status, payload, "application/json; charset=UTF-8", reply.headers)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if _LIST_PATH.match(path) is None:
                self._send(error_reply(404, "NOT_FOUND", f"fake: no route for GET {path}"))
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            if headers.get("x-goog-api-key") not in fake.api_keys:
                self._send(error_reply(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."))
                return
            with fake._lock:
                fake.list_calls += 1
                failing = fake.list_failures > 0
                fake.list_failures -= 1 if failing else 0
                models = list(fake.listed_models)
            if failing:
                self._send(error_reply(500, "INTERNAL", "fake: models.list failure"))
                return
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            size = int(params.get("pageSize") or 50)
            start = int(params.get("pageToken") or 0)
            body: dict[str, Any] = {"models": models[start : start + size]}
            if start + size < len(models):
                body["nextPageToken"] = str(start + size)
            self._send(Reply(body=body))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            vertex, developer = _VERTEX_PATH.match(path), _DEVELOPER_PATH.match(path)
            match = vertex or developer
            if match is None:
                self._send(error_reply(404, "NOT_FOUND", f"fake: no route for POST {path}"))
                return
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(error_reply(400, "INVALID_ARGUMENT", "fake: body is not JSON"))
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            if vertex is not None:
                auth = headers.get("authorization", "")
                token = auth[7:] if auth.lower().startswith("bearer ") else ""
                if not fake.accept_bearer(token):
                    self._send(error_reply(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."))
                    return
            elif headers.get("x-goog-api-key") not in fake.api_keys:
                self._send(
                    error_reply(
                        400,
                        "INVALID_ARGUMENT",
                        "API key not valid. Please pass a valid API key.",
                        details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
                    )
                )
                return
            recorded = RecordedRequest(
                method="POST",
                path=self.path,
                headers=headers,
                body=body,
                api="vertex" if vertex is not None else "developer",
                model=match.group("model"),
                version=match.group("version"),
                project=vertex.group("project") if vertex else None,
                location=vertex.group("location") if vertex else None,
            )
            reply = fake.next_reply(recorded)
            if reply.delay and fake.closing.wait(reply.delay):
                return
            self._send(reply)

    return Handler


@contextlib.contextmanager
def start_fake_gemini(
    *,
    image_size: tuple[int, int] = (64, 64),
    noise: bool = False,
    delay: float = 0.0,
    api_keys: tuple[str, ...] = ("test-gemini-key",),
    accept_bearer: Callable[[str], bool] | None = None,
    port: int = 0,
) -> Iterator[tuple[str, FakeGemini]]:
    """Serve on 127.0.0.1 in a thread; yields (base_url, fake). Default reply: a PNG of `image_size` after `delay`."""
    fake = FakeGemini(image_size=image_size, noise=noise, delay=delay, api_keys=api_keys, accept_bearer=accept_bearer)
    with serve_handler(_handler(fake), port=port, on_close=fake.closing.set) as base_url:
        yield base_url, fake


def main() -> None:
    """`python -m tests.fakes.gemini_server [--port P] [--size WxH] [--delay S] [--noise]`: serve until Ctrl-C."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--noise", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with start_fake_gemini(image_size=(width, height), delay=args.delay, noise=args.noise, port=args.port) as (url, _):
        print(json.dumps({"GOOGLE_VERTEX_BASE_URL": url, "IMAGEGEN_GEMINI_BASE_URL": url}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
