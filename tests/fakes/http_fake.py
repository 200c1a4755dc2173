"""Machinery shared by the HTTP fakes: the loopback server thread, sending an answer, scripted replies, request log."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# A host name that looks public; tests map it (through the guarded fetcher's injected resolver and
# connector) to the fake's loopback port, so upstream image URLs are fetched the production way.
PUBLIC_HOST = "images.upstream-fake.example"
PUBLIC_IP = "93.184.216.34"


@contextlib.contextmanager
def serve_handler(
    handler: type[BaseHTTPRequestHandler], *, port: int = 0, on_close: Callable[[], None] | None = None
) -> Iterator[str]:
    """Run `handler` on 127.0.0.1 in a daemon thread; yields the base URL. `on_close` wakes sleeping handlers."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name=f"fake-{handler.__name__}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if on_close is not None:
            on_close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def send_payload(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer with `payload` and a Content-Length; a client that already hung up (a timeout) is not an error."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> list[tuple[str, str | None, str | None, bytes]]:
        """multipart/form-data parts as (name, filename, content type, bytes), in order."""
        raw = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            ctype = part.get_content_type() if filename else None
            parts.append((str(name), filename, ctype, part.get_payload(decode=True) or b""))
        return parts

    def fields(self) -> dict[str, str]:
        return {name: data.decode() for name, filename, _, data in self.form() if filename is None}

    def files(self) -> list[tuple[str, str | None, bytes]]:
        return [(name, ctype, data) for name, filename, ctype, data in self.form() if filename is not None]


@dataclass
class Reply:
    """A scripted answer. `hang` sleeps before answering (a timeout for the client); `raw` is sent as-is."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.json).encode() if self.json is not None else b""


def error_reply(status: int, message: str, code: Any = None, **extra: Any) -> Reply:
    """The `{"error": {...}}` envelope the OpenAI-style APIs use."""
    err: dict[str, Any] = {"message": message, "code": code, **extra}
    return Reply(status=status, json={"error": err})


@cache
def make_image(width: int, height: int, fmt: str = "PNG", color: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A solid-colour image of the requested size (cached: benchmarks ask for the same one many times)."""
    from PIL import Image

    img = Image.new("RGBA" if fmt == "PNG" else "RGB", (width, height), (*color, 255) if fmt == "PNG" else color)
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


class FakeApi:
    """Base of a fake upstream: subclasses implement `handle`; tests push scripted replies that win over it."""

    def __init__(self, *, key: str | None = None) -> None:
        self.key = key
        self.requests: list[Recorded] = []
        self.replies_made = 0  # answers the fake has produced (after any delay), sent or not
        self.files: dict[str, tuple[bytes, str]] = {}
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._serving: contextlib.ExitStack | None = None
        self.port = 0

    # --- scripting -------------------------------------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        """Answer the next API requests (not file downloads) with these replies, in order."""
        with self._lock:
            self._script.extend(replies)

    def api_requests(self) -> list[Recorded]:
        return [r for r in self.requests if not r.path.startswith("/files/")]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def public_url(self, path: str) -> str:
        """A URL on the public-looking host name that the test fetcher routes to this server."""
        return f"http://{PUBLIC_HOST}:{self.port}{path}"

    def host_file(self, data: bytes, content_type: str, name: str | None = None) -> str:
        with self._lock:
            name = name or f"img{len(self.files)}"
            self.files[f"/files/{name}"] = (data, content_type)
        return self.public_url(f"/files/{name}")

    def authorized(self, request: Recorded) -> bool:
        return self.key is None or request.headers.get("authorization") == f"Bearer {self.key}"

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def _dispatch(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.path in self.files:
                data, ctype = self.files[request.path]
                return Reply(body=data, content_type=ctype)
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        return self.handle(request)

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    reply = fake._dispatch(recorded)
                except Exception as exc:  # a bug in the fake must show up as a 500, not a hang
                    reply = Reply(status=500, json={"error": {"message": f"fake crashed: {exc!r}"}})
                with fake._lock:
                    fake.replies_made += 1
                if reply.hang:
                    time.sleep(reply.hang)
                send_payload(self, reply.status, reply.payload(), reply.content_type, reply.headers)

            do_GET = _serve
            do_POST = _serve

        Handler.__name__ = type(self).__name__
        self._serving = contextlib.ExitStack()
        base_url = self._serving.enter_context(serve_handler(Handler))
        self.port = int(base_url.rpartition(":")[2])
        return self.base

    @contextlib.contextmanager
    def running(self, prefix: str = "") -> Iterator[tuple[str, FakeApi]]:
        """Serve for the duration of the block; yields (base URL + `prefix`, self)."""
        self.start()
        try:
            yield f"{self.base}{prefix}", self
        finally:
            self.stop()

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.close()
            self._serving = None
