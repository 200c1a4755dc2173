"""Outputs belong to their caller: over real HTTP with the official client and bearer keys, another key's output id,
URL (fresh or expired), file:// and gs:// URI are `not_found` exactly like a missing output; IMAGEGEN_SHARED_OWNERS
lets named keys share; objects without an owner belong to nobody. Local store and fake-gcs-server."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client

from imagegen_mcp.access.keys import create_api_key
from imagegen_mcp.config import Settings
from imagegen_mcp.storage.local import LocalStore
from tests.fakes.gcs_server import start_fake_gcs
from tests.fakes.google_token_server import start_fake_token_server, write_service_account_file
from tests.integration.test_auth_http import keys_document
from tests.integration.test_gallery_http import AppsSupport
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio
PLACEHOLDER = "local/placeholder"
BUCKET = "imagegen-owner-outputs"
INPUT_BUCKET = "imagegen-owner-inputs"


def _three_keys() -> tuple[dict[str, str], dict[str, str], str]:
    """Keys a, b, c (secrets), their ids, and the keys document."""
    made = {name: create_api_key(f"key {name}") for name in "abc"}
    return (
        {name: key for name, (key, _) in made.items()},
        {name: record.id for name, (_, record) in made.items()},
        keys_document(*(record for _, record in made.values())),
    )


@pytest.fixture(scope="module")
def local_server() -> Iterator[tuple[ServerHandle, dict[str, str], dict[str, str]]]:
    keys, ids, document = _three_keys()
    env = {
        "IMAGEGEN_AUTH": "bearer",
        "IMAGEGEN_API_KEYS": document,
        "IMAGEGEN_DEFAULT_MODEL": PLACEHOLDER,
        "IMAGEGEN_SHARED_OWNERS": f"{ids['a']},{ids['c']}",  # a and c share; b is on its own
        "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
        "IMAGEGEN_URL_TTL_SECONDS": "900",
    }
    with start_server(env) as handle:
        yield handle, keys, ids


@asynccontextmanager
async def client(handle: ServerHandle, key: str, *, app: bool = False) -> AsyncIterator[mcp.Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60.0)
    try:
        extensions = [AppsSupport()] if app else []
        async with mcp.Client(streamable_http_client(handle.mcp_url, http_client=http), extensions=extensions) as c:
            yield c
    finally:
        await http.aclose()


async def edit(handle: ServerHandle, key: str, ref: str) -> dict[str, Any]:
    async with client(handle, key) as c:
        result = await c.call_tool("edit_image", {"prompt": "make it blue", "images": [ref]})
    assert result.structured_content is not None
    return result.structured_content


async def made_by(handle: ServerHandle, key: str, prompt: str) -> dict[str, Any]:
    """The first image a generate_image call with `key` made."""
    async with client(handle, key) as c:
        made = (await c.call_tool("generate_image", {"prompt": prompt})).structured_content
    assert made is not None and not made.get("error"), made
    return made["images"][0]


def error_of(structured: dict[str, Any]) -> dict[str, Any]:
    assert structured.get("error"), f"expected a refusal, got {structured}"
    return structured["error"]


async def test_another_keys_output_is_not_found_by_any_reference(
    local_server: tuple[ServerHandle, dict[str, str], dict[str, str]],
) -> None:
    handle, keys, _ids = local_server
    image = await made_by(handle, keys["a"], "a lighthouse")
    outputs = Path(handle.env["IMAGEGEN_LOCAL_DIR"])
    signer = LocalStore(Settings(local_dir=str(outputs)))  # the server's own signing key file in that folder
    expired = (await signer.sign(image["id"], ttl_seconds=-60, base_url=handle.base_url)).url
    async with httpx2.AsyncClient() as http:
        assert (await http.get(expired)).status_code == 403  # really expired
        assert (await http.get(image["url"])).status_code == 200  # really fresh
    references = {"id": image["id"], "url": image["url"], "expired url": expired, "uri": image["uri"]}

    refusals = {name: error_of(await edit(handle, keys["b"], ref)) for name, ref in references.items()}
    for name, ref in references.items():
        own = await edit(handle, keys["a"], ref)
        assert not own.get("error"), (name, own)
        shared = await edit(handle, keys["c"], ref)
        assert not shared.get("error"), (name, shared)

    # The refusal is the answer for an output that is gone: same code, message and details.
    (outputs / image["id"]).unlink()
    missing = error_of(await edit(handle, keys["a"], image["id"]))
    assert missing["code"] == "not_found"
    for name, refusal in refusals.items():
        assert refusal == missing, name


async def test_an_output_without_owner_belongs_to_nobody(
    local_server: tuple[ServerHandle, dict[str, str], dict[str, str]],
) -> None:
    """Outputs written before owners were recorded: refused to every key (they cannot be attributed)."""
    handle, keys, _ids = local_server
    outputs = Path(handle.env["IMAGEGEN_LOCAL_DIR"])
    image_id = (await made_by(handle, keys["a"], "an old photo"))["id"]
    old_id = image_id.replace(image_id[16:24], "0ddba11a")
    shutil.copy(outputs / image_id, outputs / old_id)
    sidecar = json.loads((outputs / f"{image_id}.json").read_text())
    assert sidecar["owner"].startswith("bearer:") and sidecar["caller"]
    sidecar.pop("owner")
    (outputs / f"{old_id}.json").write_text(json.dumps(sidecar))
    for name in "abc":
        assert error_of(await edit(handle, keys[name], old_id))["code"] == "not_found"


async def test_gallery_links_re_signs_only_the_callers_outputs(
    local_server: tuple[ServerHandle, dict[str, str], dict[str, str]],
) -> None:
    handle, keys, _ids = local_server
    image = await made_by(handle, keys["a"], "a kite")
    async with client(handle, keys["b"], app=True) as b:
        stolen = await b.call_tool("gallery_links", {"ids": [image["id"]]})
        by_url = await b.call_tool("gallery_links", {"ids": [image["url"]]})
        never = await b.call_tool("gallery_links", {"ids": [image["id"].replace(image["id"][16:24], "deadbeef")]})
    async with client(handle, keys["a"], app=True) as a:
        own = await a.call_tool("gallery_links", {"ids": [image["id"]]})
    async with client(handle, keys["c"], app=True) as c:
        shared = await c.call_tool("gallery_links", {"ids": [image["url"]]})
    assert stolen.is_error and by_url.is_error and never.is_error
    for refused in (stolen, by_url):
        assert refused.structured_content["images"] == []
        assert refused.structured_content["error"]["code"] == "not_found"
    assert never.structured_content["error"]["code"] == "not_found"
    assert not own.is_error and own.structured_content["images"][0]["id"] == image["id"]
    assert not shared.is_error and shared.structured_content["images"][0]["id"] == image["id"]


@pytest.fixture(scope="module")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, dict[str, str], str]]:
    keys, _ids, document = _three_keys()
    tmp = tmp_path_factory.mktemp("owner-gcs")
    with start_fake_token_server() as (token_uri, _tokens), start_fake_gcs((BUCKET, INPUT_BUCKET)) as gcs_url:
        key_file = write_service_account_file(Path(tmp) / "sa.json", token_uri)
        env = {
            "IMAGEGEN_AUTH": "bearer",
            "IMAGEGEN_API_KEYS": document,
            "IMAGEGEN_STORAGE": "gcs",
            "IMAGEGEN_BUCKET": BUCKET,
            "IMAGEGEN_INPUT_BUCKETS": INPUT_BUCKET,
            "IMAGEGEN_ENABLE_PLACEHOLDER": "true",
            "IMAGEGEN_DEFAULT_MODEL": PLACEHOLDER,
            "IMAGEGEN_RATE_LIMIT_PER_MINUTE": "0",
            "STORAGE_EMULATOR_HOST": gcs_url,
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
            "GOOGLE_CLOUD_PROJECT": "test-project",
            "NO_GCE_CHECK": "True",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        with start_server(env) as handle:
            yield handle, keys, gcs_url


def _upload(gcs_url: str, bucket: str, name: str, data: bytes, metadata: dict[str, str]) -> None:
    response = httpx2.post(
        f"{gcs_url}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "multipart"},
        files={
            "metadata": (None, json.dumps({"name": name, "metadata": metadata}), "application/json"),
            "file": (None, data, "image/png"),
        },
        timeout=10,
    )
    response.raise_for_status()


async def test_gcs_outputs_are_scoped_by_id_signed_url_and_gs_uri(
    gcs_server: tuple[ServerHandle, dict[str, str], str],
) -> None:
    handle, keys, gcs_url = gcs_server
    image = await made_by(handle, keys["a"], "a glacier")
    assert image["uri"].startswith(f"gs://{BUCKET}/outputs/") and "X-Goog-Signature=" in image["url"]
    async with httpx2.AsyncClient() as http:
        png = (await http.get(image["url"])).content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    references = {"id": image["id"], "signed url": image["url"], "gs uri": image["uri"]}

    refusals = {name: error_of(await edit(handle, keys["b"], ref)) for name, ref in references.items()}
    for name, ref in references.items():
        own = await edit(handle, keys["a"], ref)
        assert not own.get("error"), (name, own)
    missing = error_of(await edit(handle, keys["b"], image["id"].replace(image["id"][16:24], "deadbeef")))
    for name, refusal in refusals.items():
        assert refusal["code"] == "not_found", name
        assert refusal == {**missing, "message": missing["message"].replace("deadbeef", image["id"][16:24])}, name

    # gs:// objects of an input bucket are inputs, not outputs: any caller may use them, as before.
    _upload(gcs_url, INPUT_BUCKET, "shared/photo.png", png, {})
    assert not (await edit(handle, keys["b"], f"gs://{INPUT_BUCKET}/shared/photo.png")).get("error")

    # An output object without an owner (stored before owners were recorded) is nobody's.
    old_id = image["id"].replace(image["id"][16:24], "0ddba11a")
    _upload(gcs_url, BUCKET, f"outputs/{old_id}", png, {"caller": "someone"})
    for name in "ab":
        assert error_of(await edit(handle, keys[name], f"gs://{BUCKET}/outputs/{old_id}"))["code"] == "not_found"
