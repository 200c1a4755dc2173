"""Shared helpers of the fault, load, fuzz, shutdown and log tests: server env, MCP clients, raw upstreams, outputs."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult

from imagegen_mcp.errors import ErrorCode
from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI

# Re-exported: the fault, load, jobs and log tests import the MCP client helpers from here.
from tests.support.mcp_http import HttpRecord as HttpRecord
from tests.support.mcp_http import mcp_client as mcp_client
from tests.support.servers import ServerHandle

OPENAI_MODEL = "openai/gpt-image-1"
TYPED_CODES = frozenset(code.value for code in ErrorCode)
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}

# Any JSON value (bounded), for fuzzing.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def openai_env(base_url: str, **settings: str) -> dict[str, str]:
    """Server environment using the OpenAI adapter against a local fake (no per-caller rate limit)."""
    env = {
        "OPENAI_API_KEY": DEFAULT_KEY,
        "IMAGEGEN_OPENAI_BASE_URL": base_url,
        "IMAGEGEN_PROVIDERS": "openai",
        "IMAGEGEN_DEFAULT_MODEL": OPENAI_MODEL,
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        "IMAGEGEN_UPSTREAM_MAX_ATTEMPTS": "3",
        "IMAGEGEN_REQUEST_DEADLINE_SECONDS": "6",
        "IMAGEGEN_UPSTREAM_TIMEOUT_SECONDS": "1.5",
    }
    env.update(settings)
    return env


async def generate(client: Client, prompt: str = "a lighthouse at dusk", **arguments: Any) -> CallToolResult:
    return await client.call_tool("generate_image", {"prompt": prompt, **arguments})


def error_code(result: CallToolResult) -> str | None:
    """The typed error code of a failed call (asserting its shape), or None for a success."""
    if not result.is_error:
        return None
    assert result.structured_content is not None, result.content
    error = result.structured_content["error"]
    assert error["code"] in TYPED_CODES, error
    assert isinstance(error["message"], str) and error["message"]
    return str(error["code"])


def assert_success(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.structured_content
    assert result.structured_content is not None
    assert result.structured_content["images"], result.structured_content
    return result.structured_content


def output_files(handle: ServerHandle) -> list[Path]:
    """Everything the local store holds besides its signing key: images, sidecars, temp files."""
    root = Path(handle.env["IMAGEGEN_LOCAL_DIR"])
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name != ".signing-key")


def log_records(handle: ServerHandle) -> list[dict[str, Any]]:
    """The server's JSON log lines (anything else it printed is skipped)."""
    records = []
    for line in handle.logs().splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                records.append(value)
    return records


def tool_call_lines(handle: ServerHandle) -> list[dict[str, Any]]:
    return [r for r in log_records(handle) if r.get("message") == "tool call"]


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class RawUpstream:
    """A socket-level stand-in for the OpenAI Images API, for what an HTTP server library hides.

    mode "slow": answer a valid ImagesResponse after `delay` seconds, unless the client hangs up first
    (recorded as "client_closed"); mode "reset": read the request, then reset the TCP connection (RST).
    """

    def __init__(self, mode: Literal["slow", "reset"], delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.events: list[str] = []
        self.answered_at: list[float] = []  # time.monotonic() of each answer, for ordering against the test's events
        self.received = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._closed = False
        self._images = FakeOpenAI(key=None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> RawUpstream:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return body

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            body = self._read_request(conn)
            if body is None:
                return
            self.received.set()
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.events.append("reset")
                return
            ready, _, _ = select.select([conn], [], [], self.delay)
            if ready and conn.recv(1) == b"":
                self.events.append("client_closed")
                return
            payload = json.dumps(self._images.images_body(json.loads(body or b"{}"))).encode()
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            ).encode()
            try:
                conn.sendall(head + payload)
                self.answered_at.append(time.monotonic())
                self.events.append("answered")
            except OSError:
                self.events.append("client_closed")


@contextlib.contextmanager
def raw_upstream(mode: Literal["slow", "reset"], delay: float = 0.0) -> Iterator[RawUpstream]:
    upstream = RawUpstream(mode, delay).start()
    try:
        yield upstream
    finally:
        upstream.close()


def jsonrpc_messages(response: httpx2.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an MCP answer, whether sent as JSON or as an SSE stream."""
    if not response.content:
        return []
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        messages = []
        for line in re.split(r"\r\n|\r|\n", response.text):  # SSE line ends only; str.splitlines() also cuts at U+0085
            if line.startswith("data:") and line[5:].strip():
                messages.append(json.loads(line[5:]))
        return messages
    value = json.loads(response.content)
    return value if isinstance(value, list) else [value]


_request_ids = itertools.count(1)


def post_tools_call(
    http: httpx2.Client, url: str, name: Any, arguments: Any, headers: dict[str, str] | None = None
) -> tuple[int, httpx2.Response]:
    """POST one raw JSON-RPC tools/call (a fresh request id; name and arguments as given, typed or not) to `url`."""
    request_id = next(_request_ids)
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return request_id, http.post(url, content=json.dumps(body), headers=headers)


def assert_no_leak_in(response: httpx2.Response) -> None:
    """No server error status and nothing of a Python traceback in what the client sees."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    text = response.text
    for marker in ("Traceback (most recent call last)", 'File "/', '.py", line '):
        assert marker not in text, text[:1000]


def error_log_lines(handle: ServerHandle) -> list[dict[str, Any]]:
    return [r for r in log_records(handle) if r.get("severity") in ("ERROR", "CRITICAL")]


@pytest.fixture(scope="module", name="server")
def fuzz_server_fixture() -> Iterator[ServerHandle]:
    """The `server` fixture of both fuzz suites (imported there under this name)."""
    with fuzz_target_server() as handle:
        yield handle


@contextlib.contextmanager
def fuzz_target_server() -> Iterator[ServerHandle]:
    """The server both fuzz suites attack (OpenAI fake upstream, no placeholder, 10 s deadline).

    On the way out it checks the server survived and logged no ERROR line.
    """
    from tests.fakes.openai_server import start_fake_openai
    from tests.support.servers import start_server

    env = openai_env("", IMAGEGEN_ENABLE_PLACEHOLDER="false", IMAGEGEN_REQUEST_DEADLINE_SECONDS="10")
    with start_fake_openai() as (base_url, _fake):
        env["IMAGEGEN_OPENAI_BASE_URL"] = base_url
        with start_server(env) as handle:
            yield handle
            assert handle.process.poll() is None, "the server died during fuzzing"
            assert error_log_lines(handle) == [], error_log_lines(handle)[:3]
