"""The whole MCP authorization flow over real HTTP: the official client's OAuthClientProvider, the endpoint in
`google-oauth,bearer` mode and a loopback fake of Google's OAuth endpoints (pre-registered client, no DCR)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import mcp
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from imagegen_mcp.access.keys import create_api_key
from tests.fakes.google_oauth_server import FakeGoogleOAuth
from tests.support.servers import ServerHandle, start_server

CLIENT_ID = "123456789-imagegen.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret"
OTHER_CLIENT = "987654321-someone-else.apps.googleusercontent.com"
REDIRECT_URI = "http://127.0.0.1:33418/callback"  # never listened on: the test reads the redirect itself
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogleOAuth]:
    fake = FakeGoogleOAuth(user="ana@corp.example")
    with fake.running():
        fake.register(CLIENT_ID, [REDIRECT_URI], CLIENT_SECRET)
        fake.register(OTHER_CLIENT, [REDIRECT_URI], "other-secret")
        yield fake


@pytest.fixture(scope="module")
def endpoint(google: FakeGoogleOAuth) -> Iterator[tuple[ServerHandle, str]]:
    key, record = create_api_key("ci")
    env = {
        "IMAGEGEN_AUTH": "google-oauth,bearer",
        **google.endpoint_env(CLIENT_ID),
        "IMAGEGEN_IAM_ALLOWED_DOMAINS": "corp.example",
        "IMAGEGEN_API_KEYS": json.dumps({"keys": [record.to_json()]}),
        "IMAGEGEN_DEFAULT_MODEL": "local/placeholder",
    }
    with start_server(env) as handle:
        yield handle, key


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


class PreRegistered:
    """TokenStorage seeded with the OAuth client the operator registered in Google Cloud (Google has no DCR)."""

    def __init__(self, client_id: str, secret: str) -> None:
        self.tokens: OAuthToken | None = None
        self.client = OAuthClientInformationFull(
            client_id=client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_post",
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            grant_types=["authorization_code"],
            response_types=["code"],
        )

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def browser() -> tuple[Any, Any]:
    """A headless browser for the consent screen: follows the authorize URL, reads code and state off the redirect."""
    seen: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            response = await http.get(url)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        seen.update({k: v[0] for k, v in parse_qs(urlsplit(location).query).items()})
        seen["authorize_url"] = url

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=seen["code"], state=seen.get("state"))

    return (redirect_handler, callback_handler), seen


def provider_for(url: str, storage: PreRegistered) -> tuple[OAuthClientProvider, dict[str, str]]:
    (redirect_handler, callback_handler), seen = browser()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="imagegen test",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],  # type: ignore[list-item]
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    return provider, seen


@pytest.mark.anyio
async def test_official_client_signs_in_with_google_and_generates(
    endpoint: tuple[ServerHandle, str], google: FakeGoogleOAuth
) -> None:
    handle, _ = endpoint
    storage = PreRegistered(CLIENT_ID, CLIENT_SECRET)
    provider, seen = provider_for(handle.mcp_url, storage)
    google.log.clear()
    async with httpx2.AsyncClient(auth=provider, timeout=60.0) as http:
        async with mcp.Client(streamable_http_client(handle.mcp_url, http_client=http)) as client:
            tools = await client.list_tools()
            assert "generate_image" in {t.name for t in tools.tools}
            result = await client.call_tool("generate_image", {"prompt": "a red square"})
    assert not result.is_error, result
    assert any(getattr(block, "type", "") == "resource_link" for block in result.content)

    # The client found Google through the 401 and the metadata, asked for `openid email` with PKCE S256 ...
    authorize = parse_qs(urlsplit(seen["authorize_url"]).query)
    assert authorize["client_id"] == [CLIENT_ID] and authorize["code_challenge_method"] == ["S256"]
    assert set(authorize["scope"][0].split()) == {"openid", "email"}
    paths = [(method, path) for method, path, _ in google.log]
    assert ("GET", "/.well-known/openid-configuration") in paths and ("POST", "/token") in paths
    assert not any(path.endswith("/register") for _, path in paths)  # pre-registered: no DCR
    # ... and the access token it sent was verified with token-info (once, then cached), never logged.
    assert storage.tokens is not None
    access = storage.tokens.access_token
    assert [p for p in paths if p == ("POST", "/tokeninfo")] == [("POST", "/tokeninfo")]
    logs = handle.logs()
    assert "ana@corp.example" in logs and access not in logs and CLIENT_SECRET not in logs
    sidecars = [p.read_text() for p in __import__("pathlib").Path(handle.env["IMAGEGEN_LOCAL_DIR"]).rglob("*.json")]
    assert any("ana@corp.example" in text for text in sidecars)


def test_unauthenticated_challenge_and_metadata_name_google(
    endpoint: tuple[ServerHandle, str], google: FakeGoogleOAuth
) -> None:
    handle, _ = endpoint
    response = httpx2.post(handle.mcp_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    metadata_url = f"{handle.base_url}/.well-known/oauth-protected-resource"
    assert f'resource_metadata="{metadata_url}"' in challenge and 'scope="openid email"' in challenge
    assert "error=" not in challenge  # nothing was presented: just "sign in"
    document = httpx2.get(metadata_url).json()
    assert document["authorization_servers"] == [google.issuer]
    assert document["scopes_supported"] == ["openid", "email"]
    assert document["resource"] == handle.mcp_url


@pytest.mark.parametrize("which", ["another client", "expired", "disallowed domain", "garbage"])
def test_refused_tokens_get_401_invalid_token(
    endpoint: tuple[ServerHandle, str], google: FakeGoogleOAuth, which: str
) -> None:
    handle, _ = endpoint
    token = {
        "another client": lambda: google.mint_access_token(OTHER_CLIENT, "ana@corp.example"),
        "expired": lambda: google.mint_access_token(CLIENT_ID, "ana@corp.example", expires_in=-1),
        "disallowed domain": lambda: google.mint_access_token(CLIENT_ID, "eve@gmail.com"),
        "garbage": lambda: "ya29.garbage-" + "x" * 40,
    }[which]()
    response = httpx2.post(handle.mcp_url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and "resource_metadata=" in challenge
    assert response.json()["error"]["code"] == "unauthenticated"
    assert token not in handle.logs()


@pytest.mark.anyio
async def test_a_flow_run_with_another_client_is_refused(
    endpoint: tuple[ServerHandle, str], google: FakeGoogleOAuth
) -> None:
    """A client holding another application's Google client gets a real Google token the endpoint refuses."""
    handle, _ = endpoint
    provider, _ = provider_for(handle.mcp_url, PreRegistered(OTHER_CLIENT, "other-secret"))
    async with httpx2.AsyncClient(auth=provider, timeout=60.0) as http:
        with pytest.raises(BaseException) as info:
            async with mcp.Client(streamable_http_client(handle.mcp_url, http_client=http)) as client:
                await client.list_tools()
    assert any(isinstance(e, mcp.MCPError) for e in leaves(info.value))
    assert "issued to another client" in handle.logs()


@pytest.mark.anyio
async def test_bearer_key_still_works_beside_google(endpoint: tuple[ServerHandle, str]) -> None:
    handle, key = endpoint
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60.0) as http:
        async with mcp.Client(streamable_http_client(handle.mcp_url, http_client=http)) as client:
            result = await client.call_tool("generate_image", {"prompt": "a blue square"})
    assert not result.is_error, result
