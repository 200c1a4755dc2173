"""Results the model can see and the user can keep, over real HTTP with the official client: one small preview
image by default (also on get_job), none with preview=false, and a `download` curl line that really saves the file."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from PIL import Image

from tests.support.previews import check_one_preview
from tests.support.servers import ServerHandle, start_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ServerHandle]:
    with start_server({"IMAGEGEN_URL_TTL_SECONDS": "600"}) as handle:
        yield handle


def content_json(result: Any) -> list[dict[str, Any]]:
    return [block.model_dump(by_alias=True, exclude_none=True, mode="json") for block in result.content]


async def test_default_results_carry_exactly_one_small_preview(endpoint: ServerHandle) -> None:
    async with Client(endpoint.mcp_url) as client:
        made = await client.call_tool("generate_image", {"prompt": "a wide harbour", "aspect_ratio": "16:9", "n": 3})
        image_id = made.structured_content["images"][0]["id"]
        edited = await client.call_tool("edit_image", {"prompt": "at night", "images": [image_id]})
        quiet = await client.call_tool("generate_image", {"prompt": "no preview", "preview": False})
        started = await client.call_tool("generate_image", {"prompt": "a job", "wait_seconds": 0})
        job = await client.call_tool("get_job", {"job_id": started.structured_content["job_id"], "wait_seconds": 60})
    assert not made.is_error and not edited.is_error and not quiet.is_error and not job.is_error
    assert [block["type"] for block in content_json(made)] == ["text", *["resource_link"] * 3, "image"]
    assert check_one_preview(content_json(made)).size == (384, 216)  # of the first image only
    assert check_one_preview(content_json(edited)).size == (384, 216)
    assert check_one_preview(content_json(job)).size == (384, 384)
    assert [block["type"] for block in content_json(quiet)] == ["text", "resource_link"]
    assert all(len(block["text"]) < 300 for block in content_json(made) if block["type"] == "text")
    names = [item["download"]["filename"] for item in made.structured_content["images"]]
    assert names == ["a-wide-harbour-1.png", "a-wide-harbour-2.png", "a-wide-harbour-3.png"]
    (job_item,) = job.structured_content["images"]
    assert job_item["download"] == {"filename": "a-job.png", "curl": f"curl -fsSL -o 'a-job.png' '{job_item['url']}'"}


async def test_the_download_line_saves_the_image(endpoint: ServerHandle, tmp_path: Path) -> None:
    async with Client(endpoint.mcp_url) as client:
        made = await client.call_tool(
            "generate_image", {"prompt": "A fox's den — at dawn", "output_format": "jpeg", "aspect_ratio": "3:2"}
        )
    (item,) = made.structured_content["images"]
    line = item["download"]["curl"]
    assert item["download"]["filename"] == "a-fox-s-den-at-dawn.jpg"
    assert shlex.split(line)[:4] == ["curl", "-fsSL", "-o", "a-fox-s-den-at-dawn.jpg"]
    done = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    saved = tmp_path / "a-fox-s-den-at-dawn.jpg"
    assert saved.read_bytes() == httpx2.get(item["url"], timeout=30).content
    assert len(saved.read_bytes()) == item["size_bytes"]
    with Image.open(saved) as img:
        assert img.format == "JPEG" and img.size == (item["width"], item["height"])
