"""Pins of the MCP SDK behaviour this server relies on; a failure here names what changed in the SDK."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.app import create_app
from imagegen_mcp.deps import build_deps
from imagegen_mcp.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(make_settings):  # type: ignore[no-untyped-def]
    return build_server(build_deps(make_settings()), in_process_caller=Caller(id="contract-test", kind="none"))


def test_sdk_contract_session_manager_comes_with_streamable_http_app(make_settings) -> None:  # type: ignore[no-untyped-def]
    """app.py mounts the app streamable_http_app() returns and runs `session_manager.run()` in its own lifespan
    (the documented mounting pattern: a mounted app's lifespan never runs)."""
    with pytest.raises(RuntimeError):
        _ = MCPServer("bare").session_manager  # only exists once streamable_http_app() has built it
    app = create_app(make_settings())
    streamed, plain = app.state.session_managers  # one build per response mode (imagegen_mcp.response_mode)
    for manager in (streamed, plain):
        assert isinstance(manager, StreamableHTTPSessionManager) and manager.stateless
    assert not streamed.json_response and plain.json_response
    assert streamed is not plain and app.state.mcp_server.session_manager is plain


async def test_sdk_contract_prompt_errors_are_value_errors(server) -> None:  # type: ignore[no-untyped-def]
    """Pins the SDK behaviour server.py relies on: an unknown prompt raises a bare ValueError (mapped to -32602)."""
    with pytest.raises(ValueError):
        await server.get_prompt("no-such-prompt", {})
    async with Client(server) as client:
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("no-such-prompt", {})
    assert unknown.value.error.code == -32602
