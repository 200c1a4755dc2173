"""The local `PUT /uploads/<id>` route over real HTTP (the app in a uvicorn thread): limits and hostile requests."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from PIL import Image

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.app import create_app
from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.uploads import open_upload, read_upload
from imagegen_mcp.storage.local import LocalStore
from tests.support.inthread import serve_in_thread

ALICE = Caller("alice", "bearer")
BOB = Caller("bob", "bearer")


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def served(make_settings: Any) -> Iterator[tuple[str, LocalStore, Settings]]:
    settings = make_settings(upload_ttl_seconds=600)
    app = create_app(settings)
    store = app.state.deps.store
    assert isinstance(store, LocalStore)
    with serve_in_thread(app) as base:
        yield base, store, settings


def ticket(served: tuple[str, LocalStore, Settings], size: int, mime: str = "image/png") -> dict[str, Any]:
    base, store, settings = served
    return asyncio.run(
        open_upload(settings, store, ALICE, mime_type=mime, size_bytes=size, filename=None, base_url=base)
    )


def put(url: str, body: bytes | Iterator[bytes], **headers: str) -> httpx2.Response:
    return httpx2.put(url, content=body, headers={"Content-Type": "image/png", **headers}, timeout=30)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def test_put_then_read_and_second_put_refused(served: tuple[str, LocalStore, Settings]) -> None:
    base, store, settings = served
    data = png()
    answer = ticket(served, len(data))
    assert answer["upload_url"].startswith(f"{base}/uploads/{answer['id']}?")
    assert answer["headers"] == {"Content-Type": "image/png"}
    response = put(answer["upload_url"], data)
    assert response.status_code == 200, response.text
    assert asyncio.run(read_upload(settings, store, answer["id"], ALICE)) == data
    again = put(answer["upload_url"], png((5, 5)))
    assert again.status_code == 409 and "already uploaded" in again.text
    assert asyncio.run(read_upload(settings, store, answer["id"], ALICE)) == data  # the first body stays
    assert not [p for p in store.uploads.dir.iterdir() if p.name.endswith(".part")]  # no temp file left


def test_refusals_are_plain_4xx_and_leave_nothing(served: tuple[str, LocalStore, Settings]) -> None:
    base, store, settings = served
    data = png()
    answer = ticket(served, len(data))
    url = answer["upload_url"]
    upload_id = answer["id"]
    cases: list[tuple[str, httpx2.Response, int]] = [
        ("wrong type", put(url, data, **{"Content-Type": "image/jpeg"}), 415),
        ("over size", put(url, data + b"x"), 413),
        ("bad signature", put(with_query(url, sig="0" * 64), data), 403),
        ("bigger max", put(with_query(url, max=str(len(data) * 10)), data), 403),
        ("later expiry", put(with_query(url, expires=str(int(time.time()) + 99999)), data), 403),
        ("non-ascii digits", put(with_query(url, expires="²" * 3), data), 403),
        ("missing sig", put(url.split("&sig=")[0], data), 403),
        ("other id", put(url.replace(upload_id, upload_id.replace("up-", "up-0")[:-4] + ".png"), data), 404),
        ("output id", put(url.replace(upload_id, upload_id[3:]), data), 404),
        ("traversal", put(url.replace(upload_id, "..%2F..%2Fetc%2Fpasswd"), data), 404),
        ("dot segments", put(url.replace(f"uploads/{upload_id}", f"uploads/../files/{upload_id}"), data), 405),
    ]
    for name, response, status in cases:
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.headers["content-type"].startswith("text/plain"), name
        assert len(response.text) < 200 and "Traceback" not in response.text, name
    assert httpx2.get(f"{base}/files/x", timeout=10).status_code == 404  # still serving
    with pytest.raises(ImageGenError) as missing:
        asyncio.run(read_upload(settings, store, upload_id, ALICE))
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert sorted(p.name for p in store.uploads.dir.iterdir()) == [f"{upload_id}.json"]


def test_expired_url_refused(served: tuple[str, LocalStore, Settings]) -> None:
    _base, store, _settings = served
    data = png()
    past = int(time.time()) - 1
    answer = ticket(served, len(data))
    signature = store.uploads._signature(answer["id"], past, len(data))
    response = put(with_query(answer["upload_url"], expires=str(past), sig=signature), data)
    assert response.status_code == 403 and "expired" in response.text


def test_chunked_body_over_the_limit_is_cut_off(served: tuple[str, LocalStore, Settings]) -> None:
    _base, store, _settings = served
    answer = ticket(served, 1000)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 KiB against a limit of 1000 bytes
            sent.append(1)
            yield b"x" * 1024

    response = put(answer["upload_url"], chunks())
    assert response.status_code == 413
    assert not (store.uploads.dir / answer["id"]).exists()
    assert not [p for p in store.uploads.dir.iterdir() if p.name.endswith(".part")]
    small = ticket(served, 1000)
    ok = put(small["upload_url"], iter([b"a" * 500, b"b" * 500]))  # chunked within the limit is fine
    assert ok.status_code == 200 and (store.uploads.dir / small["id"]).read_bytes() == b"a" * 500 + b"b" * 500


def raw_request(base: str, head: str, body: bytes = b"") -> str:
    """One HTTP/1.1 request written by hand (headers an HTTP client would not let us omit); the status line back."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        reply = sock.recv(4096).decode("latin-1")
    return reply.split("\r\n", 1)[0]


def test_missing_content_length_is_411(served: tuple[str, LocalStore, Settings]) -> None:
    base, _store, _settings = served
    answer = ticket(served, 100)
    target = answer["upload_url"][len(base) :]
    host = urlsplit(base).netloc
    status = raw_request(
        base, f"PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\nConnection: close\r\n"
    )
    assert status.split(" ")[1] == "411"
    bad_length = f"PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\nContent-Length: 99999\r\n"
    assert raw_request(base, bad_length + "Connection: close\r\n").split(" ")[1] == "413"


def test_host_and_origin_guard_cover_uploads(served: tuple[str, LocalStore, Settings]) -> None:
    _base, _store, _settings = served
    data = png()
    answer = ticket(served, len(data))
    assert put(answer["upload_url"], data, Host="evil.example").status_code == 421
    assert put(answer["upload_url"], data, Origin="https://evil.example").status_code == 403
    assert put(answer["upload_url"], data).status_code == 200


@pytest.mark.anyio
async def test_owner_and_missing_give_the_same_not_found(make_settings: Any) -> None:
    settings = make_settings(shared_owners=["alice", "carol"])
    store = LocalStore(settings)
    data = png()
    answer = await open_upload(
        settings,
        store,
        ALICE,
        mime_type="image/png",
        size_bytes=len(data),
        filename=None,
        base_url="http://127.0.0.1:1",
    )
    record = json.loads((store.uploads.dir / f"{answer['id']}.json").read_text())
    assert record["metadata"] == {"owner": "bearer:alice"}
    (store.uploads.dir / answer["id"]).write_bytes(data)
    assert await read_upload(settings, store, answer["id"], ALICE) == data
    assert await read_upload(settings, store, answer["id"], Caller("carol", "iam")) == data  # shared pair
    assert await read_upload(settings, store, answer["id"], Caller("anonymous", "none")) == data  # auth=none
    other = await open_upload(
        settings, store, ALICE, mime_type="image/png", size_bytes=10, filename=None, base_url=None
    )
    errors = []
    for upload_id, caller in [(answer["id"], BOB), (other["id"], ALICE), ("up-" + answer["id"][3:-4] + ".jpg", BOB)]:
        with pytest.raises(ImageGenError) as refused:
            await read_upload(settings, store, upload_id, caller)
        assert refused.value.code is ErrorCode.NOT_FOUND
        errors.append(refused.value.message.replace(upload_id, "<id>"))
    assert len(set(errors)) == 1  # someone else's upload reads exactly like a missing one


@pytest.mark.anyio
async def test_sweep_removes_old_uploads(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings()
    store = LocalStore(settings)
    answer = await open_upload(
        settings, store, ALICE, mime_type="image/webp", size_bytes=10, filename=None, base_url=None
    )
    (store.uploads.dir / answer["id"]).write_bytes(b"x")
    assert await store.sweep(time.time()) == 0
    assert await store.sweep(time.time() + 2 * 86400) == 1
    assert list(store.uploads.dir.iterdir()) == []
