"""Local fake of the OpenAI Images API (`/v1/images/generations`, `/v1/images/edits`), scriptable and fault-injecting.

Usable without pytest (benchmarks, load tests):

    with start_fake_openai(image_size=(256, 256), delay=0.05, fault_429=0.1) as (base_url, fake):
        settings = Settings(openai_base_url=base_url)   # key: fake.key
"""

from __future__ import annotations

import base64
import contextlib
import random
import threading
import time
from typing import Any

from tests.fakes.http_fake import FakeApi, Recorded, Reply, error_reply, make_image

DEFAULT_KEY = "sk-fake-openai-0123456789abcdef"
_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


class FakeOpenAI(FakeApi):
    """Answers like the OpenAI Images API.

    image_size: (w, h) of returned images (default 64x64, small keeps tests fast; None: the requested `size`);
    delay: seconds each API answer takes; fault_429 / fault_500 / fault_timeout: probability of a 429 (with
    Retry-After), a 500, or an answer that hangs `timeout_hang` seconds; output: "b64" or "url".
    """

    def __init__(
        self,
        *,
        key: str | None = DEFAULT_KEY,
        image_size: tuple[int, int] | None = (64, 64),
        delay: float = 0.0,
        fault_429: float = 0.0,
        fault_500: float = 0.0,
        fault_timeout: float = 0.0,
        timeout_hang: float = 30.0,
        retry_after: str = "1",
        output: str = "b64",
        seed: int = 0,
    ) -> None:
        super().__init__(key=key)
        self.image_size = image_size
        self.delay = delay
        self.fault_429 = fault_429
        self.fault_500 = fault_500
        self.fault_timeout = fault_timeout
        self.timeout_hang = timeout_hang
        self.retry_after = retry_after
        self.output = output
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.counts = {"ok": 0, "429": 0, "500": 0, "timeout": 0}

    def _count(self, what: str) -> None:
        with self._rng_lock:
            self.counts[what] += 1

    def _fault(self) -> Reply | None:
        with self._rng_lock:
            roll = self._rng.random()
        if roll < self.fault_429:
            self._count("429")
            reply = error_reply(429, "Rate limit reached for images per minute.", "rate_limit_exceeded")
            reply.headers["Retry-After"] = self.retry_after
            return reply
        roll -= self.fault_429
        if roll < self.fault_500:
            self._count("500")
            return error_reply(500, "The server had an error while processing your request.", None)
        roll -= self.fault_500
        if roll < self.fault_timeout:
            self._count("timeout")
            return Reply(status=504, json={"error": {"message": "timeout"}}, hang=self.timeout_hang)
        return None

    def handle(self, request: Recorded) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        if request.method != "POST" or request.path not in ("/v1/images/generations", "/v1/images/edits"):
            return error_reply(404, f"Invalid URL ({request.method} {request.path})", "unknown_url")
        if not self.authorized(request):
            return error_reply(401, "Incorrect API key provided: sk-fak***cdef.", "invalid_api_key")
        fault = self._fault()
        if fault is not None:
            return fault
        if request.path.endswith("/generations"):
            params: dict[str, Any] = request.json()
        else:
            params = request.fields()
            if not any(name in ("image[]", "image") for name, _, _ in request.files()):
                return error_reply(400, "Missing required parameter: 'image'.", "missing_required_parameter")
        if not params.get("prompt"):
            return error_reply(400, "Missing required parameter: 'prompt'.", "missing_required_parameter")
        model = str(params.get("model") or "")
        if model in SHUT_DOWN_MODELS:
            return error_reply(
                404,
                f"The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations",
                "model_not_found",
                type="invalid_request_error",
            )
        problem = parameter_problem(params)
        if problem is not None:
            return error_reply(400, problem, "invalid_value")
        self._count("ok")
        return Reply(json=self.images_body(params))

    def images_body(self, params: dict[str, Any]) -> dict[str, Any]:
        """A successful ImagesResponse for these request parameters."""
        n = int(params.get("n") or 1)
        fmt_name = str(params.get("output_format") or "png")
        pil_format, mime = _FORMATS.get(fmt_name, _FORMATS["png"])
        size = str(params.get("size") or "auto")
        if self.image_size is not None:
            width, height = self.image_size
        elif "x" in size:
            width, height = (int(v) for v in size.split("x"))
        else:
            width, height = 1024, 1024
        data = make_image(width, height, pil_format)
        items: list[dict[str, Any]] = []
        for _ in range(n):
            if self.output == "url":
                items.append({"url": self.host_file(data, mime)})
            else:
                items.append({"b64_json": base64.b64encode(data).decode()})
        return {
            "created": int(time.time()),
            "data": items,
            "background": params.get("background") or "opaque",
            "output_format": fmt_name,
            "quality": params.get("quality") or "medium",
            "size": size if "x" in size else f"{width}x{height}",
            "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110},
        }


# Image models OpenAI's deprecations page lists as shut down (2026-05-12, 2026-10-23, 2026-12-01): the API
# answers 404 model_not_found for them.
SHUT_DOWN_MODELS = frozenset(
    {
        "dall-e-2",
        "dall-e-3",
        "gpt-image-1",
        "gpt-image-1.5",
        "gpt-image-1.5-2025-12-16",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
    }
)

# Size and quality rules as documented for the gpt-image-2 family (see the sources in catalog.json's notes).
_BASIC_QUALITIES = {"low", "medium", "high", "auto"}
_TIERED_QUALITIES = _BASIC_QUALITIES | {"xhigh", "max"}


def parameter_problem(params: dict[str, Any]) -> str | None:
    """What the API would refuse in these parameters (flexible-size rules, per-family qualities), or None."""
    model = str(params.get("model") or "")
    size = str(params.get("size") or "auto")
    quality = str(params.get("quality") or "auto")
    tiered = model.startswith(("gpt-image-2.5", "gpt-image-2.6"))
    qualities = _TIERED_QUALITIES if tiered else _BASIC_QUALITIES
    if quality not in qualities:
        return f"Invalid value: '{quality}'. Supported values are: {sorted(qualities)}"
    if size == "auto":
        return None
    width, height = (int(v) for v in size.split("x"))
    if width % 16 or height % 16:
        return f"Invalid size '{size}': both edges must be multiples of 16."
    if max(width, height) > 3840 or max(width, height) > 3 * min(width, height):
        return f"Invalid size '{size}': long edge at most 3840 and at most 3 times the short edge."
    if not 655_360 <= width * height <= 8_294_400:
        return f"Invalid size '{size}': between 655,360 and 8,294,400 pixels."
    return None


def start_fake_openai(**options: Any) -> contextlib.AbstractContextManager[tuple[str, FakeOpenAI]]:
    """Run a FakeOpenAI on 127.0.0.1 (free port) for the block; yields (base URL ending in /v1, fake)."""
    return FakeOpenAI(**options).running("/v1")  # type: ignore[return-value]


if __name__ == "__main__":
    import sys

    with start_fake_openai(image_size=None) as (url, _fake):
        print(url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            sys.exit(0)
