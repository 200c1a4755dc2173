"""Cloud mode end to end in a real server process: Vertex via real ADC resolution (service-account key file whose
token endpoint is a local fake), outputs in fake-gcs-server with metadata, V4 URLs signed with that key."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from PIL import Image

from tests.fakes.gcs_server import start_fake_gcs
from tests.fakes.gemini_server import start_fake_gemini
from tests.fakes.google_token_server import start_fake_token_server, vertex_subprocess_env, write_service_account_file
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio
BUCKET = "imagegen-e2e-outputs"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cloud")
    with (
        start_fake_token_server() as (token_uri, tokens),
        start_fake_gemini(image_size=(320, 200), accept_bearer=tokens.is_valid) as (vertex_url, vertex),
        start_fake_gcs((BUCKET,)) as gcs_url,
    ):
        key_file = write_service_account_file(Path(tmp) / "sa.json", token_uri)
        env = {
            **vertex_subprocess_env(adc_file=key_file, vertex_base_url=vertex_url),
            "IMAGEGEN_STORAGE": "gcs",
            "IMAGEGEN_BUCKET": BUCKET,
            "STORAGE_EMULATOR_HOST": gcs_url,
            "IMAGEGEN_PROVIDERS": "vertex",
            "IMAGEGEN_URL_TTL_SECONDS": "900",
        }
        with start_server(env) as handle:
            yield {"server": handle, "vertex": vertex, "gcs": gcs_url}


def _object(gcs_url: str, name: str) -> dict[str, Any]:
    from urllib.parse import quote

    response = httpx2.get(f"{gcs_url}/storage/v1/b/{BUCKET}/o/{quote(name, safe='')}", timeout=10)
    response.raise_for_status()
    return response.json()


async def test_vertex_generation_lands_in_the_bucket_with_a_signed_url(cloud: dict[str, Any]) -> None:
    server: ServerHandle = cloud["server"]
    async with Client(server.mcp_url) as client:
        listing = (await client.call_tool("list_models", {})).structured_content
        result = await client.call_tool(
            "generate_image",
            {
                "prompt": "a glacier",
                "model": "google/gemini-3-pro-image-preview",
                "n": 2,
                "aspect_ratio": "16:9",
                "image_size": "2K",
                "output_format": "jpeg",
            },
        )
    assert listing["default_model"] == "google/gemini-3-pro-image-preview"
    assert "local/placeholder" not in {m["id"] for m in listing["models"]}  # never offered in cloud mode by default
    assert not result.is_error, result.content
    sc = result.structured_content
    assert sc["provider"] == "vertex" and len(sc["images"]) == 2
    sent = cloud["vertex"].requests[-1]
    assert sent.api == "vertex" and sent.model == "gemini-3-pro-image"
    config = sent.body["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert "IMAGE" in config["responseModalities"]
    for item in sc["images"]:
        assert item["uri"].startswith(f"gs://{BUCKET}/outputs/") and item["mime_type"] == "image/jpeg"
        blob = _object(cloud["gcs"], item["uri"].removeprefix(f"gs://{BUCKET}/"))
        assert blob["contentType"] == "image/jpeg"
        assert blob["metadata"]["model"] == "google/gemini-3-pro-image-preview"
        assert blob["metadata"]["provider"] == "vertex" and blob["metadata"]["caller"] == "anonymous"
        assert len(blob["metadata"]["prompt_sha256"]) == 64 and "a glacier" not in str(blob["metadata"])
        assert "X-Goog-Signature=" in item["url"]
        response = httpx2.get(item["url"], timeout=30)
        assert response.status_code == 200
        with Image.open(io.BytesIO(response.content)) as img:
            assert img.format == "JPEG" and img.size == (320, 200)


async def test_edit_by_id_and_gs_uri_reads_from_the_bucket(cloud: dict[str, Any]) -> None:
    server: ServerHandle = cloud["server"]
    async with Client(server.mcp_url) as client:
        first = await client.call_tool("generate_image", {"prompt": "a fox"})
        item = first.structured_content["images"][0]
        by_id = await client.call_tool("edit_image", {"prompt": "add snow", "images": [item["id"]]})
        by_uri = await client.call_tool("edit_image", {"prompt": "add snow", "images": [item["uri"]]})
        foreign = await client.call_tool("edit_image", {"prompt": "x", "images": ["gs://another-bucket/a.png"]})
    assert not by_id.is_error and not by_uri.is_error, (by_id.content, by_uri.content)
    sent = cloud["vertex"].requests[-1]
    assert sent.inline_images, "the earlier output was sent to Vertex as a reference image"
    assert foreign.structured_content["error"]["code"] == "forbidden"
