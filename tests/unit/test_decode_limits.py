"""Decode limits through the tools in-process: the per-call pixel cap, the budget's refusal, lean placeholder edits."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from imagegen_mcp.access.caller import Caller
from imagegen_mcp.deps import build_deps
from imagegen_mcp.errors import ErrorCode, ImageGenError
from imagegen_mcp.images.inputs import decode_base64
from imagegen_mcp.server import build_server

pytestmark = pytest.mark.anyio


def _png_b64(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


async def _edit(settings: Any, **arguments: Any) -> Any:
    server = build_server(build_deps(settings), in_process_caller=Caller(id="in-process-test", kind="none"))
    async with Client(server) as client:
        return await client.call_tool("edit_image", {"prompt": "recolour", "model": "local/placeholder", **arguments})


def _error(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    return result.structured_content["error"]


@pytest.mark.parametrize(
    ("size", "image_size", "expected"),
    [((3000, 1500), None, (1024, 512)), ((3000, 1500), "2K", (2048, 1024)), ((600, 300), None, (600, 300))],
)
async def test_placeholder_edits_come_out_at_the_size_class(make_settings, size, image_size, expected) -> None:  # type: ignore[no-untyped-def]
    extra = {"image_size": image_size} if image_size else {}
    result = await _edit(make_settings(), images=[_png_b64(*size)], **extra)
    assert not result.is_error, result.content
    item = result.structured_content["images"][0]
    assert (item["width"], item["height"]) == expected
    assert Image.open(item["uri"].removeprefix("file://")).size == expected


async def test_the_call_pixel_cap_counts_every_input_before_decoding(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(max_request_pixels=1_000_000)
    error = _error(await _edit(settings, images=[_png_b64(800, 800), _png_b64(800, 800)]))
    assert error["code"] == "invalid_argument"
    assert "input image 2" in error["message"] and "1000000" in error["message"]
    # One input fits; its output (same size: under 1K) is counted too and fits within 1.5 MP.
    assert not (await _edit(make_settings(max_request_pixels=1_500_000), images=[_png_b64(800, 800)])).is_error
    error = _error(await _edit(settings, images=[_png_b64(800, 800)]))
    assert error["code"] == "invalid_argument" and "output image 1" in error["message"]


async def test_an_input_larger_than_the_decode_budget_is_refused(make_settings) -> None:  # type: ignore[no-untyped-def]
    error = _error(
        await _edit(make_settings(decode_budget_mb=16, max_request_pixels=10**9), images=[_png_b64(3000, 3000)])
    )
    assert error["code"] == "invalid_argument"
    assert "34 MiB" in error["message"] and "16 MiB" in error["message"]


def test_large_base64_decodes_in_pieces_and_still_refuses_inner_padding() -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB: several pieces
    assert decode_base64(base64.b64encode(data).decode()) == data
    # A first piece of exactly 1 MiB characters that ends in padding, then more: invalid as a whole.
    padded = base64.b64encode(b"x" * 786_430).decode()
    assert len(padded) == 1 << 20 and padded.endswith("==")
    with pytest.raises(ImageGenError) as caught:
        decode_base64(padded + base64.b64encode(b"more").decode())
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
