"""Hostile requests to the real app over HTTP: typed 4xx answers, never a 500, and the server keeps serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from imagegen_mcp.app import create_app
from imagegen_mcp.storage.local import LocalStore
from tests.support.inthread import serve_in_thread


@pytest.fixture
def served(make_settings) -> Iterator[tuple[str, LocalStore]]:  # type: ignore[no-untyped-def]
    app = create_app(make_settings())
    with serve_in_thread(app) as base_url:
        yield base_url, app.state.deps.store


def _stored_link(base_url: str, store: LocalStore, ttl: int = 60) -> tuple[str, dict[str, str]]:
    import asyncio

    async def make() -> str:
        stored = await store.put(b"\x89PNG\r\n\x1a\nfake", mime_type="image/png", metadata={})
        return (await store.sign(stored.id, ttl_seconds=ttl, base_url=base_url)).url

    url = asyncio.run(make())
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return url.split("?", 1)[0], query


@pytest.mark.parametrize(
    ("expires", "sig", "status"),
    [
        ("%C2%B2", None, 404),  # "²".isdigit() is True, int("²") raises
        ("%D9%A1%D9%A2", None, 404),  # Arabic-Indic digits
        (None, "%C3%A9", 403),  # non-ASCII str into hmac.compare_digest raises TypeError
        (None, "%C3%A9" * 32, 403),
    ],
)
def test_files_link_with_non_ascii_query_is_a_clean_refusal(
    served: tuple[str, LocalStore], expires: str | None, sig: str | None, status: int
) -> None:
    base_url, store = served
    path, query = _stored_link(base_url, store)
    url = f"{path}?expires={expires or query['expires']}&sig={sig or query['sig']}"
    response = httpx2.get(url, timeout=10)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in ("not_found", "forbidden")
    assert httpx2.get(f"{path}?expires={query['expires']}&sig={query['sig']}", timeout=10).status_code == 200


def test_a_link_signed_with_a_short_ttl_stops_working_after_it(served: tuple[str, LocalStore]) -> None:
    """A correctly signed link is refused once its own expiry passes (not only when `expires` is tampered with)."""
    base_url, store = served
    path, query = _stored_link(base_url, store, ttl=4)  # expires = int(now) + 4: at least 3 s to fetch it once
    url = f"{path}?expires={query['expires']}&sig={query['sig']}"
    assert httpx2.get(url, timeout=10).status_code == 200
    while time.time() <= int(query["expires"]):
        time.sleep(0.1)
    time.sleep(0.05)
    refused = httpx2.get(url, timeout=10)
    assert refused.status_code == 403 and "expired" in refused.json()["error"]["message"]


async def _asgi_post(app: Any, headers: list[tuple[bytes, bytes]]) -> int:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8080"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return next(m["status"] for m in messages if m["type"] == "http.response.start")


@pytest.mark.anyio
@pytest.mark.parametrize("length", [b"\xb2", b"\xb9\xb2\xb3", b"-1", b"1e3"])
async def test_a_non_ascii_content_length_is_refused_not_a_500(make_settings, length: bytes) -> None:  # type: ignore[no-untyped-def]
    """h11 refuses such a header itself; other ASGI servers (functions-framework's) may pass it on."""
    app = create_app(make_settings())
    assert await _asgi_post(app, [(b"content-length", length)]) == 413


@pytest.mark.parametrize("host", ["localhost:@evil.com", "localhost:18900.evil.com", "[::1].evil.com"])
@pytest.mark.parametrize("path", ["/mcp", "/.well-known/oauth-protected-resource", "/files/x"])
def test_a_host_header_that_only_starts_like_loopback_is_refused(
    served: tuple[str, LocalStore], host: str, path: str
) -> None:
    base_url, _ = served
    response = httpx2.post(f"{base_url}{path}", headers={"Host": host}, json={}, timeout=10)
    if path != "/mcp":
        response = httpx2.get(f"{base_url}{path}", headers={"Host": host}, timeout=10)
    assert response.status_code == 421, response.text
    assert "evil" not in response.text


def test_links_and_metadata_use_the_parsed_host(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Without IMAGEGEN_PUBLIC_URL, the base URL is rebuilt from the validated Host (lower-cased, no junk)."""
    app = create_app(make_settings(auth="bearer"))
    with serve_in_thread(app) as base_url:
        port = urlsplit(base_url).port
        meta = httpx2.get(
            f"{base_url}/.well-known/oauth-protected-resource", headers={"Host": f"LOCALHOST:{port}"}, timeout=10
        )
        assert meta.json()["resource"] == f"http://localhost:{port}/mcp"
