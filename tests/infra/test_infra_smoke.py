"""infra/smoke/smoke_test.py against a local fake MCP endpoint (loopback only)."""

from __future__ import annotations

import importlib.util
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from tests.fakes.http_fake import send_payload, serve_handler

pytestmark = pytest.mark.infra

SMOKE = Path(__file__).resolve().parents[2] / "infra" / "smoke" / "smoke_test.py"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def load_smoke():
    spec = importlib.util.spec_from_file_location("imagegen_smoke_test", SMOKE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader
    spec.loader.exec_module(module)
    return module


class FakeMcp(BaseHTTPRequestHandler):
    behaviour: ClassVar[dict] = {}
    seen: ClassVar[list] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        send_payload(self, status, body, ctype)

    def do_GET(self):
        if self.path == "/files/out.png":
            self._send(200, PNG, "image/png")
        else:
            self._send(404, b"", "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.headers.get("Authorization"), body.get("method")))
        if self.headers.get("Authorization") != "Bearer good-token":
            self._send(401, b'{"error":"unauthenticated"}', "application/json")
            return
        method = body.get("method")
        if "id" not in body:
            self._send(202, b"", "application/json")
            return
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "imagegen-mcp", "version": "0.1.0"},
            }
        elif method == "tools/list":
            names = self.behaviour.get("tools", ["generate_image", "edit_image"])
            result = {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in names]}
        elif method == "tools/call":
            port = self.server.server_address[1]
            result = self.behaviour.get("call") or {
                "content": [
                    {
                        "type": "resource_link",
                        "uri": f"http://127.0.0.1:{port}/files/out.png",
                        "name": "out.png",
                        "mimeType": "image/png",
                    }
                ],
                "structuredContent": {"images": [{"id": "out"}]},
                "isError": False,
            }
        else:
            result = {}
        message = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result})
        if self.behaviour.get("sse"):
            self._send(200, f"event: message\ndata: {message}\n\n".encode(), "text/event-stream")
        else:
            self._send(200, message.encode(), "application/json")


@pytest.fixture
def server():
    FakeMcp.behaviour = {}
    FakeMcp.seen = []
    with serve_handler(FakeMcp) as base_url:
        yield base_url


@pytest.mark.parametrize("sse", [False, True])
def test_smoke_passes_against_a_healthy_endpoint(server, sse, monkeypatch):
    FakeMcp.behaviour = {"sse": sse}
    monkeypatch.setenv("SMOKE_ID_TOKEN", "good-token")
    smoke = load_smoke()
    assert smoke.main(["--url", server, "--model", "local/placeholder", "--retries", "1", "--timeout", "10"]) == 0
    assert [m for _, m in FakeMcp.seen] == ["initialize", "notifications/initialized", "tools/list", "tools/call"]
    assert all(auth == "Bearer good-token" for auth, _ in FakeMcp.seen)


def test_smoke_fails_without_a_valid_token(server, monkeypatch):
    monkeypatch.setenv("SMOKE_ID_TOKEN", "wrong")
    assert load_smoke().main(["--url", server, "--retries", "1", "--timeout", "10"]) == 1


def test_smoke_fails_when_the_tool_reports_an_error(server, monkeypatch):
    FakeMcp.behaviour = {"call": {"content": [{"type": "text", "text": "boom"}], "isError": True}}
    monkeypatch.setenv("SMOKE_ID_TOKEN", "good-token")
    assert load_smoke().main(["--url", server, "--retries", "1", "--timeout", "10"]) == 1


def test_smoke_fails_when_generate_image_is_missing(server, monkeypatch):
    FakeMcp.behaviour = {"tools": ["something_else"]}
    monkeypatch.setenv("SMOKE_ID_TOKEN", "good-token")
    assert load_smoke().main(["--url", server, "--retries", "1", "--timeout", "10"]) == 1


def test_empty_model_skips_the_generation_call(server, monkeypatch):
    monkeypatch.setenv("SMOKE_ID_TOKEN", "good-token")
    assert load_smoke().main(["--url", server, "--model", "", "--retries", "1", "--timeout", "10"]) == 0
    assert "tools/call" not in [m for _, m in FakeMcp.seen]


def test_tagged_url_is_read_from_the_service_description(tmp_path):
    smoke = load_smoke()
    service = {
        "status": {
            "url": "https://svc-123.europe-west1.run.app",
            "traffic": [
                {"latestRevision": True, "percent": 100},
                {"revisionName": "svc-00002", "tag": "c-abc1234", "url": "https://c-abc1234---svc-xyz.a.run.app/"},
            ],
        }
    }
    assert smoke.tagged_url(service, "c-abc1234") == "https://c-abc1234---svc-xyz.a.run.app"
    with pytest.raises(smoke.SmokeError):
        smoke.tagged_url(service, "c-missing")
