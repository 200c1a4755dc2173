"""The MCP surface in-process through the SDK's client: schemas, annotations, results, errors, progress."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.deps import build_deps
from imagegen_mcp.server import build_server
from tests.support.tool_names import PUBLIC_TOOLS

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(make_settings):  # type: ignore[no-untyped-def]
    return build_server(build_deps(make_settings()), in_process_caller=Caller(id="in-process-test", kind="none"))


def _png(width: int, height: int, color: tuple[int, int, int, int] = (10, 200, 30, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(out, format="PNG")
    return out.getvalue()


async def _call(client: Client, name: str, args: dict[str, Any]) -> Any:
    return await client.call_tool(name, args)


async def test_tools_have_schemas_annotations_and_output_schemas(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == PUBLIC_TOOLS
    gen = tools["generate_image"]
    props = gen.input_schema["properties"]
    assert gen.input_schema["required"] == ["prompt"]
    for name in (
        "prompt",
        "model",
        "n",
        "aspect_ratio",
        "image_size",
        "quality",
        "background",
        "negative_prompt",
        "seed",
        "output_format",
        "preview",
    ):
        assert name in props, name
    assert props["n"]["maximum"] == 4 and props["n"]["minimum"] == 1
    assert set(tools["edit_image"].input_schema["required"]) == {"prompt", "images"}
    assert "mask" in tools["edit_image"].input_schema["properties"]
    for tool in tools.values():
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object"
        assert tool.annotations is not None
    assert tools["list_models"].annotations.read_only_hint is True
    assert tools["generate_image"].annotations.read_only_hint is False
    assert tools["generate_image"].annotations.open_world_hint is True
    assert "images" in gen.output_schema["properties"]


async def test_generate_returns_links_a_download_line_and_one_small_preview(server) -> None:  # type: ignore[no-untyped-def]
    """The bytes travel by link; the result carries only one small preview image, for the model to look at."""
    async with Client(server) as client:
        result = await _call(client, "generate_image", {"prompt": "a lighthouse", "aspect_ratio": "16:9", "n": 2})
    assert not result.is_error
    sc = result.structured_content
    assert sc["model"] == "local/placeholder" and sc["provider"] == "placeholder" and sc["prompt"] == "a lighthouse"
    assert len(sc["images"]) == 2
    for item in sc["images"]:
        assert {"id", "url", "uri", "mime_type", "width", "height", "size_bytes", "expires_at"} <= set(item)
        assert (item["width"], item["height"]) == (1024, 576)
        assert item["mime_type"] == "image/png"
        assert "/files/" in item["url"] and "sig=" in item["url"]
    assert [item["download"]["filename"] for item in sc["images"]] == ["a-lighthouse-1.png", "a-lighthouse-2.png"]
    assert sc["images"][0]["download"]["curl"] == f"curl -fsSL -o 'a-lighthouse-1.png' '{sc['images'][0]['url']}'"
    kinds = [c.type for c in result.content]
    assert kinds == ["text", "resource_link", "resource_link", "image"]
    (preview,) = [c for c in result.content if c.type == "image"]
    raw = base64.b64decode(preview.data)
    assert preview.mime_type == "image/jpeg" and len(raw) <= 40_000
    with Image.open(io.BytesIO(raw)) as img:
        assert img.format == "JPEG" and img.size == (384, 216)
    assert len(result.content[0].text) < 200  # the text block stays short
    assert "base64" not in json.dumps(sc)


async def test_preview_false_or_off_by_setting_leaves_the_image_block_out(make_settings) -> None:  # type: ignore[no-untyped-def]
    on = build_server(build_deps(make_settings()), in_process_caller=Caller(id="t", kind="none"))
    off = build_server(build_deps(make_settings(preview_default=False)), in_process_caller=Caller(id="t", kind="none"))
    async with Client(on) as client:
        declined = await _call(client, "generate_image", {"prompt": "x", "preview": False})
    async with Client(off) as client:
        quiet = await _call(client, "generate_image", {"prompt": "x"})
        asked = await _call(client, "generate_image", {"prompt": "x", "preview": True})
    for result in (declined, quiet):
        assert [c.type for c in result.content] == ["text", "resource_link"]
    assert [c.type for c in asked.content] == ["text", "resource_link", "image"]


async def test_preview_is_small_inline_image(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await _call(
            client, "generate_image", {"prompt": "tall", "aspect_ratio": "9:16", "image_size": "2K", "preview": True}
        )
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1
    raw = base64.b64decode(images[0].data)
    assert len(raw) <= 40_000
    with Image.open(io.BytesIO(raw)) as img:
        assert max(img.size) <= 384 and img.size[1] > img.size[0]


async def test_output_format_and_transparency(server, make_settings) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        jpeg = await _call(client, "generate_image", {"prompt": "x", "output_format": "jpeg"})
        clear = await _call(
            client, "generate_image", {"prompt": "x", "background": "transparent", "output_format": "webp"}
        )
        bad = await _call(
            client, "generate_image", {"prompt": "x", "background": "transparent", "output_format": "jpeg"}
        )
    assert jpeg.structured_content["images"][0]["mime_type"] == "image/jpeg"
    path = clear.structured_content["images"][0]["uri"].removeprefix("file://")
    with Image.open(path) as img:
        assert img.format == "WEBP" and img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0
    assert bad.is_error and bad.structured_content["error"]["code"] == "invalid_argument"


async def test_edit_an_earlier_output_by_id_and_url(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        first = await _call(client, "generate_image", {"prompt": "base"})
        item = first.structured_content["images"][0]
        by_id = await _call(client, "edit_image", {"prompt": "invert it", "images": [item["id"]]})
        by_url = await _call(client, "edit_image", {"prompt": "again", "images": [item["url"]]})
    assert not by_id.is_error and not by_url.is_error
    original = Image.open(item["uri"].removeprefix("file://")).convert("RGB")
    edited = Image.open(by_id.structured_content["images"][0]["uri"].removeprefix("file://")).convert("RGB")
    assert edited.size == original.size
    px = (original.width // 2, original.height - 5)
    assert edited.getpixel(px) != original.getpixel(px)
    assert by_id.structured_content["images"][0]["id"] != item["id"]


async def test_edit_with_mask_changes_only_masked_area(server) -> None:  # type: ignore[no-untyped-def]
    base = _png(64, 64)
    mask_img = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask_img.paste((0, 0, 0, 0), (32, 0, 64, 64))  # right half transparent = edit here
    out = io.BytesIO()
    mask_img.save(out, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(base).decode()
    async with Client(server) as client:
        result = await _call(
            client,
            "edit_image",
            {"prompt": "p", "images": [data_url], "mask": base64.b64encode(out.getvalue()).decode()},
        )
    assert not result.is_error, result.structured_content
    edited = Image.open(result.structured_content["images"][0]["uri"].removeprefix("file://")).convert("RGB")
    assert edited.getpixel((10, 60)) == (10, 200, 30)
    assert edited.getpixel((50, 60)) == (245, 55, 225)


@pytest.mark.parametrize(
    ("name", "args", "code"),
    [
        ("generate_image", {"prompt": "x", "n": 9}, "invalid_argument"),
        ("generate_image", {"prompt": ""}, "invalid_argument"),
        ("generate_image", {"prompt": "   "}, "invalid_argument"),
        ("generate_image", {"prompt": "x" * 8001}, "invalid_argument"),
        ("generate_image", {"prompt": "x", "aspect_ratio": "7:3"}, "invalid_argument"),
        ("generate_image", {"prompt": "x", "model": "nope/nothing"}, "not_found"),
        ("generate_image", {"prompt": "x", "model": "openai/gpt-image-1"}, "misconfigured"),
        (
            "generate_image",
            {"prompt": "x", "model": "google/gemini-3-pro-image-preview", "quality": "high"},
            "unsupported",
        ),
        ("generate_image", {"prompt": "[blocked] test"}, "content_blocked"),
        ("edit_image", {"prompt": "x", "images": []}, "invalid_argument"),
        ("edit_image", {"prompt": "x", "images": ["not-an-id"]}, "not_found"),
        ("edit_image", {"prompt": "x", "images": ["data:image/png;base64,!!!"]}, "invalid_argument"),
        (
            "edit_image",
            {"prompt": "x", "images": ["data:image/png;base64," + base64.b64encode(b"GIF0" * 40).decode()]},
            "invalid_argument",
        ),
        ("edit_image", {"prompt": "x", "images": ["ftp://example.com/a.png"]}, "invalid_argument"),
        ("edit_image", {"prompt": "x", "images": ["gs://someone-elses-bucket/a.png"]}, "unsupported"),
        ("edit_image", {"prompt": "x", "images": ["20991231-000000-" + "0" * 32 + ".png"]}, "not_found"),
    ],
)
async def test_bad_input_is_a_typed_error(server, name: str, args: dict[str, Any], code: str) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await _call(client, name, args)
        healthy = await _call(client, "generate_image", {"prompt": "still serving"})
    assert result.is_error
    assert result.structured_content["error"]["code"] == code, result.structured_content
    assert "Traceback" not in result.content[0].text
    assert not healthy.is_error


async def test_unsupported_option_says_what_is_supported(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await _call(
            client, "generate_image", {"prompt": "x", "model": "openai/gpt-5-image", "aspect_ratio": "21:9"}
        )
    error = result.structured_content["error"]
    assert error["code"] == "unsupported"
    assert "supported" in error["message"] and "1:1" in error["message"]


async def test_decompression_bomb_is_refused_before_decoding(server) -> None:  # type: ignore[no-untyped-def]
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # ~400 M pixels, tiny file
    async with Client(server) as client:
        result = await _call(
            client, "edit_image", {"prompt": "x", "images": [base64.b64encode(bomb.getvalue()).decode()]}
        )
    assert result.structured_content["error"]["code"] == "invalid_argument"
    assert "pixels" in result.structured_content["error"]["message"]


async def test_list_models_resource_and_prompts(server) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        listing = (await _call(client, "list_models", {})).structured_content
        resource = await client.read_resource("imagegen://models")
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        detailed = await client.get_prompt(
            "detailed", {"subject": "a cat", "style": "watercolor", "mood": "calm", "lighting": "dusk"}
        )
    by_id = {m["id"]: m for m in listing["models"]}
    for seed in (
        "google/gemini-3-pro-image-preview",
        "google/gemini-2.5-flash-image",
        "openai/gpt-5-image",
        "black-forest-labs/flux.2-pro",
        "black-forest-labs/flux.2-flex",
        "local/placeholder",
    ):
        assert seed in by_id
    assert by_id["local/placeholder"]["available"] is True
    openai = by_id["openai/gpt-5-image"]
    assert openai["available"] is False and "key" in openai["unavailable_reason"].lower()
    caps = by_id["local/placeholder"]["capabilities"]
    assert {
        "generate",
        "edit",
        "mask",
        "max_n",
        "aspect_ratios",
        "image_sizes",
        "output_formats",
        "transparent_background",
    } <= set(caps)
    assert json.loads(resource.contents[0].text)["models"] == listing["models"]
    assert set(prompts) == {"basic", "detailed"}
    text = detailed.messages[0].content.text
    assert "a cat" in text and "watercolor" in text and "dusk" in text


async def test_progress_notifications_when_asked(server) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "p"}, progress_callback=on_progress)
    assert not result.is_error
    assert len(seen) >= 3
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
    assert seen[-1][1] == "done"


async def test_mask_must_be_png_with_alpha_and_match_size(server) -> None:  # type: ignore[no-untyped-def]
    base = base64.b64encode(_png(32, 32)).decode()
    opaque_jpeg = io.BytesIO()
    Image.new("RGB", (32, 32)).save(opaque_jpeg, format="JPEG")
    wrong_size = base64.b64encode(_png(16, 16, (0, 0, 0, 0))).decode()
    async with Client(server) as client:
        jpeg = await _call(
            client,
            "edit_image",
            {"prompt": "p", "images": [base], "mask": base64.b64encode(opaque_jpeg.getvalue()).decode()},
        )
        small = await _call(client, "edit_image", {"prompt": "p", "images": [base], "mask": wrong_size})
    assert jpeg.structured_content["error"]["code"] == "invalid_argument" and "alpha" in jpeg.content[0].text
    assert small.structured_content["error"]["code"] == "invalid_argument" and "must match" in small.content[0].text
