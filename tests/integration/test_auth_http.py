"""Auth through the real HTTP endpoint (uvicorn) and the official MCP client: 401s, metadata, keys, ID tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp
import pytest

from imagegen_mcp.access.keys import KeyRecord, create_api_key
from imagegen_mcp.storage.local_uploads import UPLOADS_DIR
from tests.fakes.google_certs_server import GoogleCertsServer, SigningKey, id_token_claims
from tests.support.mcp_http import HttpRecord, mcp_client
from tests.support.servers import ServerHandle, start_server

AUDIENCE = "https://imagegen-test-abc123-ew.a.run.app"
PLACEHOLDER = "local/placeholder"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def keys_document(*records: KeyRecord) -> str:
    return json.dumps({"keys": [r.to_json() for r in records]})


@pytest.fixture(scope="module")
def bearer_server() -> Iterator[tuple[ServerHandle, dict[str, str]]]:
    open_key, open_record = create_api_key("all models")
    narrow_key, narrow_record = create_api_key("openai only", models=["openai/gpt-image-1"])
    burst_key, burst_record = create_api_key("rate-limit test only")
    upload_key, upload_record = create_api_key("upload rate-limit test only")
    env = {
        "IMAGEGEN_AUTH": "bearer",
        "IMAGEGEN_API_KEYS": keys_document(open_record, narrow_record, burst_record, upload_record),
        "IMAGEGEN_DEFAULT_MODEL": PLACEHOLDER,
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "60",
        "IMAGEGEN_RATE_LIMIT_BURST": "3",
    }
    with start_server(env) as handle:
        yield (
            handle,
            {
                "open": open_key,
                "open_id": open_record.id,
                "narrow": narrow_key,
                "narrow_id": narrow_record.id,
                "burst": burst_key,
                "uploads": upload_key,
            },
        )


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


async def generate(url: str, headers: dict[str, str], **arguments: Any) -> Any:
    async with mcp_client(url, headers=headers, timeout=30.0) as client:
        tools = await client.list_tools()
        assert "generate_image" in {t.name for t in tools.tools}
        return await client.call_tool("generate_image", {"prompt": "a red square", **arguments})


def test_unauthenticated_gets_401_challenge_and_metadata(bearer_server: tuple[ServerHandle, dict[str, str]]) -> None:
    handle, _ = bearer_server
    response = httpx2.post(handle.mcp_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    metadata_url = f"{handle.base_url}/.well-known/oauth-protected-resource"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{metadata_url}"' in challenge
    assert response.json()["error"]["code"] == "unauthenticated"

    wrong = httpx2.post(handle.mcp_url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer igm_nope"})
    assert wrong.status_code == 401
    assert "igm_nope" not in wrong.text

    document = httpx2.get(metadata_url).json()
    assert document["resource"] == handle.mcp_url
    assert document["bearer_methods_supported"] == ["header"]
    assert httpx2.get(f"{handle.base_url}/healthz").status_code == 200  # health stays open


@pytest.mark.anyio
async def test_mcp_client_without_key_is_refused(bearer_server: tuple[ServerHandle, dict[str, str]]) -> None:
    handle, _ = bearer_server
    record = HttpRecord()
    with pytest.raises(BaseException) as info:
        async with mcp_client(handle.mcp_url, record=record, timeout=30.0) as client:
            await client.list_tools()
    assert any(isinstance(e, mcp.MCPError) for e in leaves(info.value))
    assert record.sequence and set(record.sequence) == {401}


@pytest.mark.anyio
async def test_authorised_client_end_to_end_and_model_scope(bearer_server: tuple[ServerHandle, dict[str, str]]) -> None:
    handle, keys = bearer_server
    result = await generate(handle.mcp_url, {"Authorization": f"Bearer {keys['open']}"}, model=PLACEHOLDER)
    assert not result.is_error, result
    assert any(getattr(block, "type", "") == "resource_link" for block in result.content)

    refused = await generate(handle.mcp_url, {"Authorization": f"Bearer {keys['narrow']}"}, model=PLACEHOLDER)
    assert refused.is_error
    assert refused.structured_content["error"]["code"] == "forbidden"

    logs = handle.logs()
    assert keys["open_id"] in logs  # the key id is what logs carry ...
    assert keys["open"] not in logs and keys["narrow"] not in logs  # ... never the key
    sidecars = [p.read_text() for p in Path(handle.env["IMAGEGEN_LOCAL_DIR"]).rglob("*.json")]
    assert sidecars and any(keys["open_id"] in text for text in sidecars)  # object metadata names the key id
    assert not any(keys["open"] in text or keys["narrow"] in text for text in sidecars)


@pytest.mark.anyio
async def test_rate_limit_per_key(bearer_server: tuple[ServerHandle, dict[str, str]]) -> None:
    handle, keys = bearer_server
    async with mcp_client(handle.mcp_url, headers={"Authorization": f"Bearer {keys['burst']}"}, timeout=30.0) as client:
        results = [await client.call_tool("generate_image", {"prompt": "dot", "model": PLACEHOLDER}) for _ in range(4)]
    assert [r.is_error for r in results] == [False, False, False, True]  # burst of 3
    error = results[3].structured_content["error"]
    assert error["code"] == "rate_limited" and 0 < error["retry_after_seconds"] <= 1.0
    # The limit is taken when the call is accepted: the granted calls ran as jobs, the refused one left none.
    assert all(r.structured_content.get("job_id") for r in results[:3])
    assert "job_id" not in results[3].structured_content
    # Another key's bucket is untouched.
    assert not (await generate(handle.mcp_url, {"Authorization": f"Bearer {keys['open']}"}, model=PLACEHOLDER)).is_error


@pytest.mark.anyio
async def test_create_upload_takes_the_callers_rate_limit(bearer_server: tuple[ServerHandle, dict[str, str]]) -> None:
    """Each upload window lets bytes into the store: a key opens them at its rate limit, refusals record nothing."""
    handle, keys = bearer_server
    uploads_dir = Path(handle.env["IMAGEGEN_LOCAL_DIR"]) / UPLOADS_DIR
    before = set(uploads_dir.iterdir()) if uploads_dir.exists() else set()
    valid = {"mime_type": "image/png", "size_bytes": 1000}
    headers = {"Authorization": f"Bearer {keys['uploads']}"}
    async with mcp_client(handle.mcp_url, headers=headers, timeout=30.0) as client:
        # An invalid request is refused before the limit: it takes no token.
        invalid = await client.call_tool("create_upload", {"mime_type": "text/html", "size_bytes": 10})
        results = [await client.call_tool("create_upload", valid) for _ in range(4)]
    assert invalid.structured_content["error"]["code"] == "invalid_argument"
    assert [r.is_error for r in results] == [False, False, False, True]  # burst of 3
    error = results[3].structured_content["error"]
    assert error["code"] == "rate_limited" and 0 < error["retry_after_seconds"] <= 1.0
    # Only the three granted windows were recorded (LocalUploads writes `<id>.json`): the refused one left nothing.
    created = {r.structured_content["id"] for r in results[:3]}
    assert {path.name for path in set(uploads_dir.iterdir()) - before} == {f"{upload_id}.json" for upload_id in created}


@pytest.fixture(scope="module")
def google() -> Iterator[tuple[GoogleCertsServer, SigningKey]]:
    server = GoogleCertsServer()
    with server.running():
        yield server, server.publish(SigningKey("kid-http"))


@pytest.fixture(scope="module")
def iam_server(google: tuple[GoogleCertsServer, SigningKey]) -> Iterator[ServerHandle]:
    certs, _ = google
    env = {
        "IMAGEGEN_AUTH": "iam",
        "IMAGEGEN_IAM_AUDIENCE": AUDIENCE,
        "IMAGEGEN_IAM_CERTS_URL": certs.url,
        "IMAGEGEN_IAM_ALLOWED_DOMAINS": "corp.example",
        "IMAGEGEN_DEFAULT_MODEL": PLACEHOLDER,
    }
    with start_server(env) as handle:
        yield handle


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["Authorization", "X-Serverless-Authorization"])
async def test_iam_id_token_end_to_end(
    iam_server: ServerHandle, google: tuple[GoogleCertsServer, SigningKey], header: str
) -> None:
    _, key = google
    token = key.sign(id_token_claims(AUDIENCE, email="agent@corp.example"))
    result = await generate(iam_server.mcp_url, {header: f"Bearer {token}"})
    assert not result.is_error, result
    assert "agent@corp.example" in iam_server.logs()


def test_iam_rejections_are_401_with_invalid_token(
    iam_server: ServerHandle, google: tuple[GoogleCertsServer, SigningKey]
) -> None:
    _, key = google
    for claims in (
        id_token_claims("https://another-service.a.run.app", email="agent@corp.example"),
        id_token_claims(AUDIENCE, email="someone@gmail.com"),
    ):
        token = key.sign(claims)
        response = httpx2.post(
            iam_server.mcp_url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert "resource_metadata=" in response.headers["www-authenticate"]
        assert token not in iam_server.logs()
    document = httpx2.get(f"{iam_server.base_url}/.well-known/oauth-protected-resource").json()
    assert "authorization_servers" not in document  # iam tokens come from no OAuth flow (see google-oauth)
