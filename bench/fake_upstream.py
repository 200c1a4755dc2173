"""Benchmark upstream: the OpenAI Images wire format, a real PNG of a set byte size, after a set delay (asyncio).

Run as its own process (`python -m bench.fake_upstream --port P`) so its work does not share the load
client's GIL. `POST /_bench/config {"image_bytes": N, "delay": S}` changes the answer between scenarios;
`GET /_bench/config` tells the current one (with the PNG's exact size and how many calls it served).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def noise_png(target_bytes: int) -> bytes:
    """A real RGB PNG of random pixels (incompressible), sized so the file is about `target_bytes`."""
    from PIL import Image

    side = max(8, int((max(target_bytes, 256) / 3) ** 0.5))
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


@dataclass
class Answer:
    """What every generation call currently gets: a pre-encoded body, so the fake costs nothing per call."""

    image_bytes: int
    delay: float
    png_size: int = 0
    body: bytes = b""
    calls: int = 0
    first_arrival: float | None = None
    last_arrival: float | None = None

    def build(self) -> None:
        png = noise_png(self.image_bytes)
        self.png_size = len(png)
        payload = {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(png).decode("ascii")}],
            "output_format": "png",
            "size": "1024x1024",
            "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110},
        }
        self.body = json.dumps(payload).encode()

    def arrived(self) -> None:
        now = time.monotonic()
        self.calls += 1
        self.first_arrival = now if self.first_arrival is None else self.first_arrival
        self.last_arrival = now

    def describe(self) -> dict[str, float | int | None]:
        spread = None
        if self.first_arrival is not None and self.last_arrival is not None:
            spread = round(self.last_arrival - self.first_arrival, 4)
        return {
            "image_bytes": self.image_bytes,
            "delay": self.delay,
            "png_size": self.png_size,
            "calls": self.calls,
            "arrival_spread_s": spread,  # first to last request since the last reset
        }


def create_app(image_bytes: int, delay: float) -> Starlette:
    answer = Answer(image_bytes, delay)
    answer.build()

    async def generations(request: Request) -> Response:
        params = await request.json()
        if not params.get("prompt"):
            error = {
                "error": {"message": "Missing required parameter: 'prompt'.", "code": "missing_required_parameter"}
            }
            return JSONResponse(error, status_code=400)
        answer.arrived()
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        return Response(answer.body, media_type="application/json")

    async def config(request: Request) -> Response:
        if request.method == "POST":
            changes = await request.json()
            answer.delay = float(changes.get("delay", answer.delay))
            new_size = int(changes.get("image_bytes", answer.image_bytes))
            if new_size != answer.image_bytes:
                answer.image_bytes = new_size
                answer.build()
            if changes.get("reset_calls"):
                answer.calls, answer.first_arrival, answer.last_arrival = 0, None, None
        return JSONResponse(answer.describe())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/images/generations", generations, methods=["POST"]),
            Route("/_bench/config", config, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--image-bytes", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    app = create_app(args.image_bytes, args.delay)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", backlog=1024, timeout_keep_alive=30)


if __name__ == "__main__":
    main()
