"""Property-based fuzzing of generate_image / edit_image arguments over real HTTP: typed results only, never a 500.

Image references are drawn so that nothing can leave loopback: data URLs, bare base64, ids, gs:// URIs (the local
store refuses them), and http(s) URLs whose host is an IP literal the SSRF guard rejects without connecting.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fakes.http_fake import make_image
from tests.integration.reliability_support import (
    MCP_HEADERS,
    TYPED_CODES,
    assert_no_leak_in,
    fuzz_server_fixture,  # noqa: F401 (the `server` fixture)
    json_values,
    jsonrpc_messages,
    post_tools_call,
)
from tests.support.servers import ServerHandle

FUZZ = settings(
    max_examples=300,
    deadline=None,  # the HTTP timeout below is the hang detector
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HTTP_TIMEOUT = 20.0

MODELS = [
    "openai/gpt-image-1",
    "openai/gpt-image-2.6-sunburst",
    "openai/gpt-image-2",
    "local/placeholder",
    "google/gemini-3-pro-image-preview",
    "black-forest-labs/flux.2-pro",
]
SAFE_URL_PREFIXES = [
    "https://127.0.0.1/",
    "https://169.254.169.254/computeMetadata/v1/",
    "https://[::1]/",
    "https://10.0.0.1:8443/",
    "http://127.0.0.1:1/",
    "https://0x7f000001/",
    "gs://imagegen-outputs/outputs/",
    "file:///etc/",
]
image_refs = st.one_of(
    st.builds(lambda p, t: p + t, st.sampled_from(SAFE_URL_PREFIXES), st.text(string.printable, max_size=30)),
    st.builds(
        lambda m, t: f"data:{m};base64,{t}",
        st.sampled_from(["image/png", "image/jpeg", "text/plain", ""]),
        st.text(string.ascii_letters + string.digits + "+/=", max_size=60),
    ),
    st.text(string.ascii_letters + string.digits + "+/=-._ \n", max_size=80),  # no ':' → never a URL
    st.just("20261121-000000-" + "0" * 32 + ".png"),
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-typed values, sometimes anything at all."""
    return st.one_of(valid, valid, json_values)


common_arguments = {
    "prompt": maybe(st.text(max_size=300)),
    "model": maybe(st.sampled_from(MODELS) | st.text(max_size=40)),
    "n": maybe(st.integers(min_value=-3, max_value=8)),
    "aspect_ratio": maybe(st.sampled_from(["1:1", "3:2", "2:3", "16:9", "21:9", "7:5", ""])),
    "image_size": maybe(st.sampled_from(["1K", "2K", "4K", "8K"])),
    "quality": maybe(st.sampled_from(["low", "medium", "high", "auto", "ultra"])),
    "background": maybe(st.sampled_from(["transparent", "opaque", "auto", "glass"])),
    "negative_prompt": maybe(st.text(max_size=100)),
    "seed": maybe(st.integers(min_value=-10, max_value=2**32)),
    "output_format": maybe(st.sampled_from(["png", "jpeg", "webp", "gif"])),
    "preview": maybe(st.booleans()),
}
# Plausible calls (a good share must get through validation to the upstream, storage and preview paths) ...
plausible_arguments = {
    "model": st.sampled_from(["openai/gpt-image-1", "openai/gpt-image-2.6-sunburst", "openai/gpt-image-2.6-flare"]),
    "n": st.integers(min_value=1, max_value=2),
    "aspect_ratio": st.sampled_from(["1:1", "3:2", "2:3"]),
    "quality": st.sampled_from(["low", "medium", "high", "auto"]),
    "background": st.sampled_from(["opaque", "auto"]),
    "output_format": st.sampled_from(["png", "jpeg", "webp"]),
    "preview": st.booleans(),
}
plausible_prompt = st.text(min_size=1, max_size=300).filter(str.strip)
SMALL_PNG = "data:image/png;base64," + base64.b64encode(make_image(24, 16)).decode()
# ... and arbitrary ones.
generate_arguments = st.one_of(
    st.fixed_dictionaries({"prompt": plausible_prompt}, optional=plausible_arguments),
    st.fixed_dictionaries({}, optional={**common_arguments, "unexpected": json_values}),
)
edit_arguments = st.one_of(
    st.fixed_dictionaries(
        {"prompt": plausible_prompt, "images": st.lists(st.just(SMALL_PNG) | image_refs, min_size=1, max_size=2)},
        optional=plausible_arguments,
    ),
    st.fixed_dictionaries(
        {},
        optional={
            **common_arguments,
            "images": maybe(st.lists(image_refs, max_size=5)),
            "mask": maybe(image_refs),
        },
    ),
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=HTTP_TIMEOUT, headers=MCP_HEADERS) as client:
        yield client


def call_tool(http: httpx2.Client, handle: ServerHandle, name: str, arguments: dict[str, Any]) -> None:
    request_id, response = post_tools_call(http, handle.mcp_url, name, arguments)
    assert_no_leak_in(response)
    [message] = [m for m in jsonrpc_messages(response) if m.get("id") == request_id]
    if "error" in message:  # protocol-level rejection (e.g. arguments that are not an object)
        assert isinstance(message["error"]["code"], int)
        event("JSON-RPC error")
        return
    result = message["result"]
    structured = result.get("structuredContent") or {}
    if result.get("isError"):
        error = structured["error"]
        assert error["code"] in TYPED_CODES, error
        assert error["code"] != "internal", error  # an internal error is an unhandled bug
        event(error["code"])
    else:
        assert structured["images"], result
        event("success")


@FUZZ
@given(arguments=generate_arguments)
def test_fuzz_generate_image_arguments(server: ServerHandle, http: httpx2.Client, arguments: dict[str, Any]) -> None:
    call_tool(http, server, "generate_image", arguments)


@FUZZ
@given(arguments=edit_arguments)
def test_fuzz_edit_image_arguments(server: ServerHandle, http: httpx2.Client, arguments: dict[str, Any]) -> None:
    call_tool(http, server, "edit_image", arguments)


@FUZZ
@given(
    name=st.text(max_size=30) | st.sampled_from(["generate_image", "edit_image", "list_models"]), arguments=json_values
)
def test_fuzz_tool_names_and_argument_shapes(
    server: ServerHandle, http: httpx2.Client, name: str, arguments: Any
) -> None:
    _, response = post_tools_call(http, server.mcp_url, name, arguments)
    assert_no_leak_in(response)
    for message in jsonrpc_messages(response):
        error = (message.get("result") or {}).get("structuredContent", {}).get("error")
        if error is not None:
            assert error["code"] in TYPED_CODES and error["code"] != "internal", error
