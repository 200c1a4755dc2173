"""The vetted network layer on its own: a hop's backend connects only to its host, TLS only as the connector did it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpcore2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imagegen_mcp.errors import ImageGenError
from imagegen_mcp.images.fetcher import request_url
from imagegen_mcp.images.url_policy import HostList, validate_url
from imagegen_mcp.images.vetted_network import VettedBackend
from tests.fakes.ssrf_lab import PUBLIC_V4, FakeResolver, Origin, RecordingConnector

pytestmark = pytest.mark.anyio

NONE = HostList(())


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with Origin({}) as server:
        yield server


def _backend(url: str, origin: Origin, *, allow_http: HostList = NONE) -> tuple[VettedBackend, RecordingConnector]:
    connector = RecordingConnector(lambda: origin.port)
    target = validate_url(url, allow_http=allow_http)
    resolver = FakeResolver({"img.example": [PUBLIC_V4], "rebound.example": ["10.0.0.1"]})
    return VettedBackend(target, resolver=resolver, connector=connector, trusted=NONE), connector


async def test_the_backend_refuses_any_host_but_its_hops(origin: Origin) -> None:
    backend, connector = _backend("https://img.example/x.png", origin)
    for host, port in (("other.example", 443), ("img.example", 8443), ("127.0.0.1", 443)):
        with pytest.raises(httpcore2.ConnectError):
            await backend.connect_tcp(host, port, timeout=1.0)
    assert connector.calls == []


async def test_the_backend_vets_before_it_connects(origin: Origin) -> None:
    backend, connector = _backend("https://rebound.example/x.png", origin)
    with pytest.raises(ImageGenError) as info:
        await backend.connect_tcp("rebound.example", 443, timeout=1.0)
    assert info.value.code.value == "forbidden"
    assert connector.calls == []


async def test_start_tls_only_confirms_the_name_the_connector_used(origin: Origin) -> None:
    backend, connector = _backend("http://img.example/x.png", origin, allow_http=HostList(["img.example"]))
    plain = await backend.connect_tcp("img.example", 80, timeout=1.0)
    try:
        assert connector.calls == [(PUBLIC_V4, 80, None)]
        assert plain.get_extra_info("server_addr") is not None and plain.get_extra_info("no-such-info") is None
        # A plain connection never becomes TLS after the fact, whatever name httpcore2 asks for.
        with pytest.raises(httpcore2.ConnectError):
            await plain.start_tls(httpcore2.default_ssl_context(), server_hostname="img.example", timeout=1.0)
    finally:
        await plain.aclose()


async def test_a_connection_that_times_out_is_a_connect_timeout(origin: Origin) -> None:
    backend, connector = _backend("https://img.example/x.png", origin)
    connector.hang = True
    with pytest.raises(httpcore2.ConnectTimeout):
        await asyncio.wait_for(backend.connect_tcp("img.example", 443, timeout=0.05), 5)


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9_-]{0,10}[a-z0-9])?", fullmatch=True)
_PATH = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="\\#"), max_size=40)


@given(st.lists(_LABEL, min_size=2, max_size=4), _PATH, st.sampled_from(["https", "http"]))
@example(["img", "example"], ".", "https")
@example(["img", "example"], "a/b/../c/./d/..", "http")
@example(["img", "example"], "a/%2e%2e/b?x=/../y", "https")
def test_every_valid_hop_becomes_the_same_request_url(labels: list[str], path: str, scheme: str) -> None:
    host = ".".join(labels)
    try:
        target = validate_url(f"{scheme}://{host}/{path}", allow_http=HostList([host]))
    except ImageGenError:
        return  # refused by the policy (a name it forbids): nothing goes on the wire
    url = request_url(target)
    assert (url.scheme, url.host, url.raw_path.decode()) == (target.scheme, target.host, target.request_target)
    assert (url.port or {"https": 443, "http": 80}[url.scheme]) == target.port
    assert str(url) == target.url
