"""The offline `local/placeholder` model: deterministic renders for local runs, smoke tests and load tests."""

from __future__ import annotations

import asyncio
import hashlib
import io
import textwrap

from ..errors import ErrorCode, ImageGenError
from ..images.budget import DecodeBudget
from ..images.imaging import FORMAT_MIME, FRAME_BYTES_PER_PIXEL, ImageInfo, decode_cost, load_frame
from ..images.types import InputImage
from .base import Availability, ImageRequest, ProducedImage, ProviderContext, ProviderResult

LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}


def output_size(aspect_ratio: str | None, image_size: str | None) -> tuple[int, int]:
    """Pixel size for an aspect ratio and size class, both sides multiples of 8."""
    long_side = LONG_SIDE[image_size or "1K"]
    w_ratio, h_ratio = (int(p) for p in (aspect_ratio or "1:1").split(":"))
    width: float
    height: float
    if w_ratio >= h_ratio:
        width, height = long_side, long_side * h_ratio / w_ratio
    else:
        width, height = long_side * w_ratio / h_ratio, long_side
    return int(round(width / 8) * 8), int(round(height / 8) * 8)


def _palette(seed_text: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed_text.encode("utf-8")).digest()
    return (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])


def _font(size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def render_generation(request: ImageRequest, index: int) -> bytes:
    """A gradient card keyed on (prompt, seed, index) with the prompt written on it."""
    from PIL import Image, ImageDraw

    opts = request.options
    width, height = output_size(opts.aspect_ratio, opts.image_size)
    top, bottom = _palette(f"{request.prompt}\x00{opts.seed}\x00{index}")
    transparent = opts.background == "transparent"
    gradient = Image.linear_gradient("L").resize((width, height))
    card = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), gradient)
    if transparent:
        canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        shape = Image.new("L", (width, height), 0)
        ImageDraw.Draw(shape).ellipse((width * 0.08, height * 0.08, width * 0.92, height * 0.92), fill=255)
        canvas.paste(card.convert("RGBA"), mask=shape)
    else:
        canvas = card.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    font_size = max(12, width // 28)
    lines = textwrap.wrap(request.prompt, width=max(12, int(width / (font_size * 0.6))))[:8]
    caption = "\n".join([*lines, f"local/placeholder #{index + 1}"])
    if opts.negative_prompt:
        caption += f"\nwithout: {opts.negative_prompt[:60]}"
    draw.multiline_text((width * 0.12, height * 0.3), caption, fill=(255, 255, 255), font=_font(font_size), spacing=6)
    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=1 if opts.quality == "low" else 6)
    return out.getvalue()


def edit_size(width: int, height: int, image_size: str | None) -> tuple[int, int]:
    """An edit's output size: the input's, shrunk (never grown) to the size class's long side, as a model would."""
    long_side = LONG_SIDE[image_size or "1K"]
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


RENDER_FRAMES = 7  # output-size frames one render holds at its peak (the prepared source included)


def edit_decode_cost(request: ImageRequest) -> int:
    """Peak bytes of `prepare_edit`: the source (and mask) decoded at full size, plus the two reduced frames."""
    first = request.images[0]
    cost = decode_cost(ImageInfo(_format_of(first.mime_type), first.width, first.height, 1))
    if request.mask is not None:
        cost += decode_cost(ImageInfo("png", request.mask.width, request.mask.height, 1))
    width, height = edit_size(first.width, first.height, request.options.image_size)
    return cost + width * height * FRAME_BYTES_PER_PIXEL * 2


def _format_of(mime_type: str) -> str:
    return next((fmt for fmt, mime in FORMAT_MIME.items() if mime == mime_type), "png")


def _reduced(data: bytes, size: tuple[int, int], mode: str):  # type: ignore[no-untyped-def]
    """`data` decoded (JPEGs drafted near `size`) and shrunk to `size` in `mode`; only one full frame is ever held."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB" if mode == "RGB" else None, size)
        load_frame(img)
        if img.size != size:
            frame = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        else:
            frame = img.convert(mode)  # a new frame that outlives the closed file
    return frame if frame.mode == mode else frame.convert(mode)


def prepare_edit(request: ImageRequest):  # type: ignore[no-untyped-def]
    """The source (RGBA) and edit area (L) at the output size, decoded once for all n renders."""
    from PIL import Image, ImageOps

    first = request.images[0]
    size = edit_size(first.width, first.height, request.options.image_size)
    base = _reduced(first.data, size, "RGBA")
    if request.mask is not None:
        # OpenAI's convention: fully transparent mask pixels mark the area to edit.
        edit_area = ImageOps.invert(_reduced(request.mask.data, size, "RGBA").getchannel("A"))
    else:
        edit_area = Image.new("L", size, 255)
    return base, edit_area


def render_edit(request: ImageRequest, index: int, prepared=None) -> bytes:  # type: ignore[no-untyped-def]
    """The first input image, recoloured inside the mask's transparent area (everywhere without a mask), captioned."""
    from PIL import Image, ImageChops, ImageDraw, ImageOps

    base, edit_area = prepared if prepared is not None else prepare_edit(request)
    rgb, alpha = base.convert("RGB"), base.getchannel("A")
    changed = ImageOps.invert(rgb)
    if index:
        changed = ImageChops.offset(changed, index * 17, index * 11)
    result = Image.composite(changed, rgb, edit_area)
    del changed, rgb
    draw = ImageDraw.Draw(result)
    font_size = max(12, base.width // 32)
    draw.text((8, 8), f"edit: {request.prompt[:80]}", fill=(255, 255, 0), font=_font(font_size))
    final = result.convert("RGBA")
    final.putalpha(alpha)
    if request.options.background == "transparent":
        final.putalpha(ImageChops.multiply(alpha, edit_area.point(lambda v: 255 if v else 0)))
    out = io.BytesIO()
    final.save(out, format="PNG")
    return out.getvalue()


class PlaceholderProvider:
    """Renders locally with Pillow; no network, no keys. Never stands in for a real model silently."""

    name = "placeholder"

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._budget = ctx.budget or DecodeBudget.from_settings(ctx.settings)

    async def availability(self) -> Availability:
        return Availability(True)

    async def generate(self, request: ImageRequest) -> ProviderResult:
        if request.prompt.strip().lower().startswith("[blocked]"):
            # Documented test hook of the offline model: exercises the content_blocked path end to end.
            raise ImageGenError(
                ErrorCode.CONTENT_BLOCKED, "local/placeholder refuses prompts starting with [blocked]", retryable=False
            )
        await request.report(f"rendering {request.options.n} placeholder image(s)")
        budget, n = self._budget, request.options.n
        prepared = None
        if request.is_edit:
            first = request.images[0]
            size = edit_size(first.width, first.height, request.options.image_size)
            # Decoded once, at the output size, for all n renders.
            async with budget.hold(edit_decode_cost(request), "the edit's input image"):
                prepared = await asyncio.to_thread(prepare_edit, request)
        else:
            size = output_size(request.options.aspect_ratio, request.options.image_size)
        render_cost = size[0] * size[1] * FRAME_BYTES_PER_PIXEL * RENDER_FRAMES

        async def render(index: int) -> bytes:
            async with budget.hold(render_cost, "a rendered image"):
                if prepared is not None:
                    return await asyncio.to_thread(render_edit, request, index, prepared)
                return await asyncio.to_thread(render_generation, request, index)

        images = await asyncio.gather(*(render(i) for i in range(n)))
        return ProviderResult(
            images=[ProducedImage(data, "image/png") for data in images],
            text="Rendered offline by local/placeholder (not an AI model).",
        )

    async def aclose(self) -> None:
        return None


__all__ = ["InputImage", "PlaceholderProvider", "output_size"]
