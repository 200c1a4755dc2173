"""Local fake of OpenRouter's chat-completions API with image output (`/api/v1/chat/completions`) and its Models
API (`GET /api/v1/models`, filtered by `output_modalities` as documented), scriptable."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from typing import Any

from tests.fakes.http_fake import FakeApi, Recorded, Reply, error_reply, make_image

DEFAULT_KEY = "sk-or-v1-fake0123456789abcdef"


def completion(images: list[str], text: str | None = "Here is your image.", **choice: Any) -> dict[str, Any]:
    """A chat-completion body whose assistant message carries `images` (data URLs or http URLs)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if images:
        message["images"] = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return {
        "id": "gen-fake-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake",
        "choices": [
            {"index": 0, "finish_reason": "stop", "native_finish_reason": "STOP", "message": message, **choice}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1290, "total_tokens": 1300},
    }


def png_data_url(width: int = 32, height: int = 32) -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(width, height, "PNG")).decode()


def listed_model(
    model_id: str,
    *,
    inputs: tuple[str, ...] = ("text",),
    outputs: tuple[str, ...] = ("image",),
    parameters: tuple[str, ...] = ("max_tokens",),
    pricing: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One model object of the Models API (`data[]`), in its documented shape."""
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "name": f"Fake: {model_id}",
        "created": 1764000000,
        "description": f"{model_id} as the fake lists it.",
        "context_length": 32768,
        "architecture": {
            "modality": "+".join(inputs) + "->" + "+".join(outputs),
            "input_modalities": list(inputs),
            "output_modalities": list(outputs),
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": pricing or {"prompt": "0", "completion": "0", "request": "0", "image": "0"},
        "top_provider": {"context_length": 32768, "max_completion_tokens": None, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": list(parameters),
    }


DEFAULT_LISTED_MODELS = (
    listed_model("google/gemini-3-pro-image-preview", inputs=("image", "text"), outputs=("image", "text")),
    listed_model("black-forest-labs/flux.2-pro", inputs=("text", "image"), parameters=("seed",)),
    listed_model("openai/gpt-5-image", inputs=("text", "image", "file"), outputs=("image", "text")),
    listed_model("openai/gpt-4o", inputs=("text", "image"), outputs=("text",)),
)


class FakeOpenRouter(FakeApi):
    """Answers each chat completion with one PNG image as a data URL (or an http URL with output="url");
    `GET /models` lists `listed_models` (edit it to add or remove models)."""

    def __init__(self, *, key: str | None = DEFAULT_KEY, output: str = "b64", delay: float = 0.0) -> None:
        super().__init__(key=key)
        self.output = output
        self.delay = delay
        self.listed_models: list[dict[str, Any]] = [dict(m) for m in DEFAULT_LISTED_MODELS]

    def models_reply(self, request: Recorded) -> Reply:
        """The Models API: `output_modalities` defaults to text, takes a comma list or `all`."""
        wanted = {"text"}
        for pair in request.query.split("&"):
            name, _, value = pair.partition("=")
            if name == "output_modalities" and value:
                wanted = set(value.replace("%2C", ",").split(","))
        listed = [
            m for m in self.listed_models if "all" in wanted or wanted & set(m["architecture"]["output_modalities"])
        ]
        return Reply(json={"data": listed})

    def handle(self, request: Recorded) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        if request.method == "GET" and request.path == "/api/v1/models":
            return self.models_reply(request)  # public in OpenRouter too: no key needed
        if request.method != "POST" or request.path != "/api/v1/chat/completions":
            return error_reply(404, "Not Found", 404)
        if not self.authorized(request):
            return error_reply(401, "No auth credentials found", 401)
        body = request.json()
        if "image" not in (body.get("modalities") or []):
            return Reply(json=completion([], "I can only describe images in words."))
        if self.output == "url":
            url = self.host_file(make_image(32, 32, "PNG"), "image/png")
        else:
            url = png_data_url()
        return Reply(json=completion([url]))


def start_fake_openrouter(**options: Any) -> contextlib.AbstractContextManager[tuple[str, FakeOpenRouter]]:
    """Run a FakeOpenRouter on 127.0.0.1 for the block; yields (base URL ending in /api/v1, fake)."""
    return FakeOpenRouter(**options).running("/api/v1")  # type: ignore[return-value]


if __name__ == "__main__":
    with start_fake_openrouter() as (url, _fake):
        print(url, flush=True)
        threading.Event().wait()
