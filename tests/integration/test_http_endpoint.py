"""The real server over real HTTP, both entry points (uvicorn `app`, functions-framework `mcp`), official client."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from PIL import Image

from tests.support.servers import ENTRIES, ServerHandle, start_server

pytestmark = pytest.mark.anyio

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module", params=ENTRIES)
def endpoint(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    with start_server({"IMAGEGEN_URL_TTL_SECONDS": "600"}, entry=request.param) as handle:
        yield handle


def _rpc_messages(response: httpx2.Response) -> list[dict[str, Any]]:
    """JSON-RPC messages of a response, whether plain JSON or an SSE stream."""
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        return body if isinstance(body, list) else [body]
    return [
        json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip()
    ]


def _post(endpoint: ServerHandle, body: Any, **headers: str) -> httpx2.Response:
    return httpx2.post(endpoint.mcp_url, content=json.dumps(body), headers={**ACCEPT, **headers}, timeout=60)


async def test_generate_then_fetch_signed_url(endpoint: ServerHandle) -> None:
    async with Client(endpoint.mcp_url) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "a kite", "aspect_ratio": "3:2", "output_format": "webp"}
        )
    assert not result.is_error, result.content
    item = result.structured_content["images"][0]
    assert item["url"].startswith(endpoint.base_url + "/files/")
    response = httpx2.get(item["url"], timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert len(response.content) == item["size_bytes"]
    with Image.open(io.BytesIO(response.content)) as img:
        assert img.format == "WEBP" and img.size == (item["width"], item["height"]) == (1024, 680)
    links = [c for c in result.content if c.type == "resource_link"]
    assert links and links[0].uri == item["url"] and links[0].name == item["id"]


async def test_edit_earlier_output_across_stateless_calls(endpoint: ServerHandle) -> None:
    async with Client(endpoint.mcp_url) as client:
        first = await client.call_tool("generate_image", {"prompt": "a boat"})
    first_id = first.structured_content["images"][0]["id"]
    async with Client(endpoint.mcp_url) as other_client:  # a new connection: nothing kept between calls
        edited = await other_client.call_tool("edit_image", {"prompt": "paint it", "images": [first_id]})
    assert not edited.is_error, edited.content
    assert edited.structured_content["images"][0]["id"] != first_id


async def test_progress_notifications_over_http(endpoint: ServerHandle) -> None:
    messages: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    async with Client(endpoint.mcp_url) as client:
        result = await client.call_tool("generate_image", {"prompt": "p"}, progress_callback=on_progress)
    assert not result.is_error
    assert len(messages) >= 3 and messages[-1] == "done"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28", "auto"])
async def test_protocol_revisions_with_official_client(endpoint: ServerHandle, mode: str) -> None:
    async with Client(endpoint.mcp_url, mode=mode) as client:  # type: ignore[arg-type]
        assert client.protocol_version in ("2025-11-25", "2026-07-28")
        if mode == "legacy":
            assert client.protocol_version == "2025-11-25"
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == {
            "generate_image",
            "edit_image",
            "list_models",
            "get_job",
            "cancel_job",
            "get_usage",
            "create_upload",
        }


def test_protocol_2025_06_18_initialize_handshake(endpoint: ServerHandle) -> None:
    init = _post(
        endpoint,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        },
    )
    assert init.status_code == 200
    reply = _rpc_messages(init)[-1]
    assert reply["result"]["protocolVersion"] == "2025-06-18"
    assert "mcp-session-id" not in {k.lower() for k in init.headers}  # stateless
    headers = {"MCP-Protocol-Version": "2025-06-18"}
    assert _post(endpoint, {"jsonrpc": "2.0", "method": "notifications/initialized"}, **headers).status_code == 202
    call = _post(
        endpoint,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "generate_image", "arguments": {"prompt": "raw"}},
        },
        **headers,
    )
    result = _rpc_messages(call)[-1]["result"]
    assert result["isError"] is False and result["structuredContent"]["images"][0]["id"]


def test_get_and_delete_on_mcp_are_405(endpoint: ServerHandle) -> None:
    for method in ("GET", "DELETE"):
        response = httpx2.request(method, endpoint.mcp_url, headers={"Accept": "text/event-stream"}, timeout=10)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


def test_healthz(endpoint: ServerHandle) -> None:
    response = httpx2.get(f"{endpoint.base_url}/healthz", headers={"Host": "anything.example"}, timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example.com"}, 421),
        ({"Host": "127.0.0.1.evil.com"}, 421),
        ({"Origin": "https://evil.example.com"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://localhost:6274"}, 200),
    ],
)
def test_host_and_origin_validation(endpoint: ServerHandle, headers: dict[str, str], status: int) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = _post(endpoint, body, **{"MCP-Protocol-Version": "2025-11-25", **headers})
    assert response.status_code == status


def _tamper(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_file_links_reject_tampering_and_expiry(endpoint: ServerHandle) -> None:
    async with Client(endpoint.mcp_url) as client:
        result = await client.call_tool("generate_image", {"prompt": "secret"})
    url = result.structured_content["images"][0]["url"]
    assert httpx2.get(url, timeout=10).status_code == 200
    expires = parse_qs(urlsplit(url).query)["expires"][0]
    assert httpx2.get(_tamper(url, sig="0" * 64), timeout=10).status_code == 403
    assert httpx2.get(_tamper(url, expires=str(int(expires) + 3600)), timeout=10).status_code == 403
    assert httpx2.get(_tamper(url, expires=str(int(time.time()) - 10)), timeout=10).status_code == 403
    other = url.replace(result.structured_content["images"][0]["id"], "20200101-000000-" + "a" * 32 + ".png")
    assert httpx2.get(other, timeout=10).status_code in (403, 404)
    assert (
        httpx2.get(f"{endpoint.base_url}/files/..%2f..%2fetc%2fpasswd?expires=1&sig=x", timeout=10).status_code == 404
    )


def test_malformed_json_rpc_gets_json_rpc_errors(endpoint: ServerHandle) -> None:
    headers = {**ACCEPT, "MCP-Protocol-Version": "2025-11-25"}
    bad_json = httpx2.post(endpoint.mcp_url, content=b"{not json", headers=headers, timeout=10)
    assert bad_json.status_code == 400 and _rpc_messages(bad_json)[0]["error"]["code"] == -32700
    not_rpc = httpx2.post(endpoint.mcp_url, content=b'{"hello": 1}', headers=headers, timeout=10)
    assert 400 <= not_rpc.status_code < 500
    unknown = _post(
        endpoint,
        {"jsonrpc": "2.0", "id": 3, "method": "no/such", "params": {}},
        **{"MCP-Protocol-Version": "2025-11-25"},
    )
    assert _rpc_messages(unknown)[-1]["error"]["code"] == -32601
    assert httpx2.get(f"{endpoint.base_url}/healthz", timeout=10).status_code == 200


def test_oversize_body_is_413(endpoint: ServerHandle) -> None:
    huge = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"edit_image","arguments":{"prompt":"x",'
        b'"images":["' + b"A" * (33 * 1024 * 1024) + b'"]}}}'
    )
    response = httpx2.post(
        endpoint.mcp_url, content=huge, headers={**ACCEPT, "MCP-Protocol-Version": "2025-11-25"}, timeout=60
    )
    assert response.status_code == 413
    assert httpx2.get(f"{endpoint.base_url}/healthz", timeout=10).status_code == 200


async def test_bad_inputs_over_http_are_typed_errors(endpoint: ServerHandle) -> None:
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, format="PNG")
    cases = [
        ("generate_image", {"prompt": "x" * 9000}, "invalid_argument"),
        ("generate_image", {"prompt": "x", "n": 0}, "invalid_argument"),
        ("generate_image", {"prompt": "x", "seed": -1}, "invalid_argument"),
        ("generate_image", {"prompt": "x", "image_size": "8K"}, "invalid_argument"),
        ("edit_image", {"prompt": "x", "images": [base64.b64encode(bomb.getvalue()).decode()]}, "invalid_argument"),
        ("edit_image", {"prompt": "x", "images": ["data:image/png;base64," + "A" * 100]}, "invalid_argument"),
        ("edit_image", {"prompt": "x", "images": ["https://169.254.169.254/computeMetadata/v1/"]}, "forbidden"),
    ]
    async with Client(endpoint.mcp_url) as client:
        for name, args, code in cases:
            result = await client.call_tool(name, args)
            assert result.is_error, (name, args)
            assert result.structured_content["error"]["code"] == code, (args, result.structured_content)
            assert "Traceback" not in json.dumps(result.model_dump(mode="json"))
        # An unknown tool is a protocol error (-32602), as the 2025-06-18 and 2025-11-25 specifications say
        # (issue 11; it was an isError result with code not_found before).
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
        assert unknown.value.error.code == -32602 and "no_such_tool" in unknown.value.error.message
