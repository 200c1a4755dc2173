"""Image hosts that answer with broken HTTP: each ends as a typed upstream error, never as `internal`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from imagegen_mcp.errors import ImageGenError
from imagegen_mcp.images.fetcher import GuardedFetcher
from tests.fakes.ssrf_lab import PNG, PUBLIC_V4, FakeResolver, Origin, RecordingConnector, raw

pytestmark = pytest.mark.anyio

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"

BROKEN: dict[str, bytes] = {
    # "\xb2" is SUPERSCRIPT TWO in latin-1: str.isdigit() says yes, int() says no.
    "/cl-superscript": HEAD + b"Content-Length: \xb2\r\n\r\n" + PNG,
    "/cl-superscript-utf8": HEAD + b"Content-Length: \xc2\xb2\r\n\r\n" + PNG,
    "/cl-negative": HEAD + b"Content-Length: -1\r\n\r\n" + PNG,
    "/cl-hex": HEAD + b"Content-Length: 0x48\r\n\r\n" + PNG,
    "/cl-conflicting": HEAD + b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(PNG) + PNG,
    "/te-gzip": HEAD + b"Transfer-Encoding: gzip\r\n\r\n" + PNG,
    "/chunk-size-garbage": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + PNG + b"\r\n0\r\n\r\n",
    "/header-without-colon": HEAD + b"Content-Length 72\r\n\r\n" + PNG,
    "/status-not-a-number": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    "/huge-header": HEAD + b"X-Pad: " + b"a" * 200_000 + b"\r\n\r\n" + PNG,
    "/endless-headers": HEAD + b"X-Pad: aaaaaaaaaaaaaaaa\r\n" * 20_000 + b"\r\n" + PNG,
}


@pytest.fixture
async def fetch_path() -> AsyncIterator[Callable[[str], Awaitable[ImageGenError]]]:
    async with Origin({path: raw(answer) for path, answer in BROKEN.items()}) as origin:
        connector = RecordingConnector(lambda: origin.port)
        fetcher = GuardedFetcher(
            allow_http_hosts=["img.example"],
            resolver=FakeResolver({"img.example": [PUBLIC_V4]}),
            connector=connector,
            timeout_seconds=2.0,
        )

        async def fetch(path: str) -> ImageGenError:
            with pytest.raises(ImageGenError) as info:
                await fetcher.fetch(f"http://img.example{path}", max_bytes=4096)
            assert connector.ips() == [PUBLIC_V4]
            return info.value

        yield fetch


@pytest.mark.parametrize("path", sorted(BROKEN))
async def test_broken_answer_is_an_upstream_error(
    fetch_path: Callable[[str], Awaitable[ImageGenError]], path: str
) -> None:
    err = await fetch_path(path)
    assert err.code.value == "upstream_error", err
