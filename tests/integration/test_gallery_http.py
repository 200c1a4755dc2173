"""The gallery MCP App over real HTTP with the official client: negotiated surface, CSP, and no change for others."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.extension import ClientExtension

from imagegen_mcp.ui.app import GALLERY_URI, gallery_html
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio

UI_EXTENSION = "io.modelcontextprotocol/ui"
APP_MIME = "text/html;profile=mcp-app"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


class AppsSupport(ClientExtension):
    """What an app-rendering host declares (the ext-apps spec's client capability)."""

    identifier = UI_EXTENSION

    def settings(self) -> dict[str, Any]:
        return {"mimeTypes": [APP_MIME]}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ServerHandle]:
    with start_server({"IMAGEGEN_URL_TTL_SECONDS": "600"}) as handle:
        yield handle


def _dump(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(by_alias=True, exclude_none=True, mode="json") for item in items]


async def test_app_resource_and_tool_binding_for_a_host_that_declares_the_extension(endpoint: ServerHandle) -> None:
    async with Client(endpoint.mcp_url, extensions=[AppsSupport()]) as client:
        assert UI_EXTENSION in (client.server_capabilities.extensions or {})
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("generate_image", "edit_image"):
            assert tools[name].meta == {"ui": {"resourceUri": GALLERY_URI}}
        assert tools["list_models"].meta is None
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        app = listed[GALLERY_URI]
        assert app.mime_type == APP_MIME
        # The endpoint's own origin (local `/files` links), nothing else: no scripts, frames or fetches allowed.
        expected_ui = {"csp": {"resourceDomains": [endpoint.base_url]}, "prefersBorder": True}
        assert app.meta == {"ui": expected_ui}
        read = await client.read_resource(GALLERY_URI)
        (content,) = read.contents
        assert content.mime_type == APP_MIME and content.meta == {"ui": expected_ui}
        assert content.text == gallery_html()
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "n": 2})
        assert not result.is_error
        assert all(img["url"].startswith(f"{endpoint.base_url}/files/") for img in result.structured_content["images"])


async def test_csp_follows_the_host_the_request_used(endpoint: ServerHandle) -> None:
    """Without IMAGEGEN_PUBLIC_URL, links use the request's base URL, and so does the declared CSP."""
    other = endpoint.base_url.replace("127.0.0.1", "localhost")
    async with Client(f"{other}/mcp", extensions=[AppsSupport()]) as client:
        (content,) = (await client.read_resource(GALLERY_URI)).contents
        assert content.meta["ui"]["csp"] == {"resourceDomains": [other]}
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        assert result.structured_content["images"][0]["url"].startswith(f"{other}/files/")


def _strip_ui(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listing without the app's additions: app-only tools and `_meta.ui`."""
    tools = [t for t in copy.deepcopy(tools) if "app" not in t.get("_meta", {}).get("ui", {}).get("visibility", [])]
    for tool in tools:
        meta = tool.get("_meta", {})
        meta.pop("ui", None)
        if not meta:
            tool.pop("_meta", None)
    return tools


def _result_shape(result: Any) -> tuple[Any, ...]:
    structured = result.structured_content
    return (
        [c.type for c in result.content],
        sorted(structured),
        [sorted(i) for i in structured["images"]],
        structured["model"],
        structured["prompt"],
        result.meta,
    )


async def test_a_client_that_does_not_declare_the_extension_sees_no_change(endpoint: ServerHandle) -> None:
    async with (
        Client(endpoint.mcp_url) as plain,
        Client(endpoint.mcp_url, extensions=[AppsSupport()]) as host,
    ):
        assert UI_EXTENSION not in (plain.server_capabilities.extensions or {})
        plain_tools = _dump((await plain.list_tools()).tools)
        host_tools = _dump((await host.list_tools()).tools)
        assert all("_meta" not in tool for tool in plain_tools)
        # The app's only footprint on the tools is `_meta.ui` and its app-only tool: the rest is what it was.
        assert plain_tools == _strip_ui(host_tools) and plain_tools != host_tools
        plain_resources = [str(r.uri) for r in (await plain.list_resources()).resources]
        assert plain_resources == ["imagegen://models"]
        # Tool results are the same for both: the app adds nothing to what the model gets.
        args = {"prompt": "a lighthouse", "n": 2, "seed": 7, "preview": True}
        plain_result = await plain.call_tool("generate_image", args)
        host_result = await host.call_tool("generate_image", args)
        assert _result_shape(plain_result) == _result_shape(host_result)
        assert plain_result.content[0].text.split(";")[0] == host_result.content[0].text.split(";")[0]


async def test_initialize_handshake_clients_still_get_the_binding(endpoint: ServerHandle) -> None:
    """On the stateless 2025-11-25 revision the server cannot see capabilities after `initialize`: it offers the
    binding (a `_meta` key such clients ignore when they do not render apps) rather than hiding the app from
    the hosts that render it today; an extra tool would be seen, so the app-only tool is not listed (still callable)."""
    async with Client(endpoint.mcp_url, mode="legacy", extensions=[AppsSupport()]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["generate_image"].meta == {"ui": {"resourceUri": GALLERY_URI}}
        assert set(tools) == {
            "generate_image",
            "edit_image",
            "get_job",
            "cancel_job",
            "list_models",
            "get_usage",
            "create_upload",
        }
        made = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        fresh = await client.call_tool("gallery_links", {"ids": [made.structured_content["images"][0]["id"]]})
        assert not fresh.is_error and fresh.structured_content["images"][0]["url"].startswith(endpoint.base_url)
        (content,) = (await client.read_resource(GALLERY_URI)).contents
        assert content.meta["ui"]["csp"] == {"resourceDomains": [endpoint.base_url]}


async def test_a_sandboxed_app_can_show_local_file_links(endpoint: ServerHandle) -> None:
    """An app in a host's sandboxed iframe fetches images with `Origin: null`; a signed /files link is its own
    credential, so it loads. The endpoint itself still refuses that Origin (DNS-rebinding protection)."""
    async with Client(endpoint.mcp_url) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
    url = result.structured_content["images"][0]["url"]
    async with httpx2.AsyncClient() as http:
        image = await http.get(url, headers={"Origin": "null"})
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        tampered = await http.get(url.replace("sig=", "sig=0"), headers={"Origin": "null"})
        assert tampered.status_code == 403
        mcp = await http.post(endpoint.mcp_url, headers={"Origin": "null", **ACCEPT}, json=PING)
        assert mcp.status_code == 403


async def test_app_only_link_refresh(endpoint: ServerHandle) -> None:
    """gallery_links is offered to the app only: hidden from a client without the extension; it re-signs ids."""
    async with Client(endpoint.mcp_url) as plain:
        assert "gallery_links" not in {t.name for t in (await plain.list_tools()).tools}
        made = await plain.call_tool("generate_image", {"prompt": "a lighthouse"})
    image = made.structured_content["images"][0]
    async with Client(endpoint.mcp_url, extensions=[AppsSupport()]) as host:
        tools = {t.name: t for t in (await host.list_tools()).tools}
        assert tools["gallery_links"].meta == {"ui": {"resourceUri": GALLERY_URI, "visibility": ["app"]}}
        fresh = await host.call_tool("gallery_links", {"ids": [image["id"], image["url"]]})
        assert not fresh.is_error
        links = fresh.structured_content["images"]
        assert [link["id"] for link in links] == [image["id"], image["id"]]
        async with httpx2.AsyncClient() as http:
            got = await http.get(links[0]["url"], headers={"Origin": "null"})
        assert got.status_code == 200 and got.content[:8] == b"\x89PNG\r\n\x1a\n"
        bad = await host.call_tool("gallery_links", {"ids": ["https://example.com/x.png"]})
        assert bad.is_error and bad.structured_content["error"]["code"] == "invalid_argument"
