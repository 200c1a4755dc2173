"""A third-party MCP client: the MCP Inspector CLI from npm drives the real server over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import httpx2
import pytest

from tests.support.servers import ServerHandle, start_server

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js (npx) for the MCP Inspector CLI"),
]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ServerHandle]:
    with start_server({}) as handle:
        yield handle


def _inspector(url: str, *args: str) -> dict:  # type: ignore[type-arg]
    completed = subprocess.run(
        ["npx", "-y", INSPECTOR, "--cli", url, "--transport", "http", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


def test_inspector_lists_tools_and_generates(endpoint: ServerHandle) -> None:
    tools = _inspector(endpoint.mcp_url, "--method", "tools/list")
    assert {t["name"] for t in tools["tools"]} == {
        "generate_image",
        "edit_image",
        "list_models",
        "get_job",
        "cancel_job",
        "get_usage",
        "create_upload",
    }
    result = _inspector(
        endpoint.mcp_url,
        "--method",
        "tools/call",
        "--tool-name",
        "generate_image",
        "--tool-arg",
        "prompt=inspector test",
        "--tool-arg",
        "aspect_ratio=4:3",
    )
    assert result.get("isError") is not True
    item = result["structuredContent"]["images"][0]
    assert (item["width"], item["height"]) == (1024, 768)
    assert httpx2.get(item["url"], timeout=30).status_code == 200
    models = _inspector(endpoint.mcp_url, "--method", "resources/read", "--uri", "imagegen://models")
    assert "local/placeholder" in models["contents"][0]["text"]
