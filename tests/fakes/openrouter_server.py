"""Local fake of OpenRouter's chat-completions API with image output (`/api/v1/chat/completions`), scriptable."""

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


class FakeOpenRouter(FakeApi):
    """Answers each chat completion with one PNG image as a data URL (or an http URL with output="url")."""

    def __init__(self, *, key: str | None = DEFAULT_KEY, output: str = "b64", delay: float = 0.0) -> None:
        super().__init__(key=key)
        self.output = output
        self.delay = delay

    def handle(self, request: Recorded) -> Reply:
        if self.delay:
            time.sleep(self.delay)
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
