"""The guarded fetcher end to end on loopback: hostile URLs, redirects, DNS rebinding, size/time caps, TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from imagegen_mcp.config import Settings
from imagegen_mcp.errors import ImageGenError
from imagegen_mcp.images.fetcher import GuardedFetcher
from imagegen_mcp.images.vetted_network import system_resolver
from tests.fakes.ssrf_lab import (
    GIF,
    JPEG,
    PNG,
    PUBLIC_IPS,
    PUBLIC_V4,
    PUBLIC_V6,
    WEBP,
    FakeResolver,
    Origin,
    RecordingConnector,
    SeenRequest,
    TlsPair,
    chunked,
    endless,
    make_tls,
    raw,
    redirect,
    respond,
    silent,
)

pytestmark = pytest.mark.anyio


DNS: dict = {
    "img.example": [PUBLIC_V4],
    "v6.example": [PUBLIC_V6],
    "dual.example": [PUBLIC_V4, PUBLIC_V6],
    "private.example": ["10.0.0.7"],
    "rfc1918-172.example": ["172.16.5.4"],
    "rfc1918-192.example": ["192.168.1.1"],
    "meta.example": ["169.254.169.254"],
    "loop.example": ["127.0.0.1"],
    "loop6.example": ["::1"],
    "cgnat.example": ["100.64.0.1"],
    "zero.example": ["0.0.0.0"],
    "bcast.example": ["255.255.255.255"],
    "mcast.example": ["224.0.0.1"],
    "doc.example": ["192.0.2.10"],
    "bench.example": ["198.18.0.1"],
    "reserved.example": ["240.0.0.1"],
    "ula.example": ["fd12:3456::1"],
    "ll6.example": ["fe80::1"],
    "site6.example": ["fec0::1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "mapped-loop.example": ["::ffff:127.0.0.1"],
    "compat.example": ["::127.0.0.1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "nat64-local.example": ["64:ff9b:1::a00:1"],
    "sixtofour.example": ["2002:7f00:1::1"],
    "teredo.example": ["2001:0:4136:e378:8000:63bf:80ff:fffe"],
    "mixed.example": [PUBLIC_V4, "10.0.0.1"],
    "mixed-late.example": [PUBLIC_V4, PUBLIC_V6, "::ffff:10.0.0.1"],
    "garbage.example": ["not-an-ip"],
    "empty.example": [],
    "rebind.example": [[PUBLIC_V4], ["127.0.0.1"]],
    "rebind-meta.example": [[PUBLIC_V4], ["169.254.169.254"]],
}


@dataclass
class Lab:
    origin: Origin  # both origins share one route table and one request log
    resolver: FakeResolver
    connector: RecordingConnector
    make: Callable[..., GuardedFetcher]

    def assert_only_public_connections(self) -> None:
        assert set(self.connector.ips()) <= PUBLIC_IPS, self.connector.calls


ROUTES = {
    "/ok.png": respond(200, PNG, {"Content-Type": "image/png"}),
    "/ok.jpg": respond(200, JPEG, {"Content-Type": "image/jpeg"}),
    "/ok.gif": respond(200, GIF, {"Content-Type": "image/gif"}),
    "/ok.webp": respond(200, WEBP, {"Content-Type": "image/webp"}),
    "/lying-type.png": respond(200, b"<html>SECRET-BODY-TEXT</html>" * 4, {"Content-Type": "image/png"}),
    "/png-as-html": respond(200, PNG, {"Content-Type": "text/html"}),
    "/chunked.png": chunked([PNG[:5], PNG[5:20], PNG[20:]]),
    "/eof.png": raw(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n" + PNG),
    "/gzip.png": respond(200, PNG, {"Content-Encoding": "gzip"}),
    "/notfound": respond(404, b"SECRET-BODY-TEXT", {"Content-Type": "text/plain"}),
    "/oops": respond(503, b"SECRET-BODY-TEXT", {"Content-Type": "text/plain"}),
    "/big-declared": respond(200, PNG, {"Content-Length": str(10**9)}),
    "/big-eof": endless(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n"),
    "/big-chunked": endless(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (len(PNG) + 10**9), prefix=PNG
    ),
    "/slow-drip": endless(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n", piece=b"\x00", delay=0.05),
    "/silent": silent(),
    "/truncated": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + PNG),
    "/garbage-status": raw(b"SSH-2.0-OpenSSH\r\n\r\n"),
    "/to-meta": redirect("http://169.254.169.254/latest/meta-data/"),
    "/to-meta-https": redirect("https://169.254.169.254/computeMetadata/v1/"),
    "/to-meta-name": redirect("https://metadata.google.internal/computeMetadata/v1/"),
    "/to-private-name": redirect("https://private.example/ok.png"),
    "/to-decimal": redirect("https://2130706433/"),
    "/to-userinfo": redirect("https://img.example@127.0.0.1/ok.png"),
    "/to-http": redirect("http://img.example/ok.png"),
    "/to-file": redirect("file:///etc/passwd"),
    "/to-relative": redirect("/ok.png", 301),
    "/to-rebind": redirect("https://rebind.example/ok.png", 307),
    "/no-location": respond(302, b"", {"Content-Type": "text/plain"}),
    "/r1": redirect("/r2"),
    "/r2": redirect("/r3"),
    "/r3": redirect("/ok.png"),
    "/loop": redirect("/loop"),
}


TLS_NAMES = ["img.example", "v6.example", "dual.example", "rebind.example", "rebind-meta.example"]


@pytest.fixture(scope="module")
def tls() -> TlsPair:
    return make_tls(TLS_NAMES)


@pytest.fixture
async def lab(tls: TlsPair) -> AsyncIterator[Lab]:
    """One route table served twice on loopback: plain http and https (certificate for TLS_NAMES)."""
    routes = dict(ROUTES)
    seen: list[SeenRequest] = []
    async with Origin(routes, requests=seen) as origin, Origin(routes, tls.server, seen) as tls_origin:
        resolver = FakeResolver(DNS)
        connector = RecordingConnector(
            lambda: origin.port, ssl_context=tls.client, tls_origin_port=lambda: tls_origin.port
        )

        def make(**kw: object) -> GuardedFetcher:
            kw.setdefault("timeout_seconds", 2.0)
            return GuardedFetcher(resolver=resolver, connector=connector, **kw)  # type: ignore[arg-type]

        yield Lab(origin, resolver, connector, make)


async def _error(coro: object) -> ImageGenError:
    with pytest.raises(ImageGenError) as info:
        await coro  # type: ignore[misc]
    return info.value


# ---------------------------------------------------------------------------------------------------------------------
# The hostile table: every URL here must be refused, and never reach a non-public address.
# ---------------------------------------------------------------------------------------------------------------------

HOSTILE: list[tuple[str, str]] = [
    # metadata servers, by address and by name
    ("https://169.254.169.254/computeMetadata/v1/", "forbidden"),
    ("http://169.254.169.254/latest/meta-data/", "forbidden"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "forbidden"),
    ("https://metadata.google.internal/computeMetadata/v1/", "forbidden"),
    ("https://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/", "forbidden"),
    ("https://metadata/computeMetadata/v1/", "forbidden"),
    ("https://anything.internal/", "forbidden"),
    ("https://localhost/", "forbidden"),
    ("https://api.localhost/", "forbidden"),
    ("https://printer.local/", "forbidden"),
    ("https://intranet/", "forbidden"),
    # IPv4 literals, every spelling
    ("https://127.0.0.1/", "forbidden"),
    ("https://10.1.2.3/", "forbidden"),
    ("https://172.31.255.255/", "forbidden"),
    ("https://192.168.0.1/", "forbidden"),
    ("https://100.100.100.200/", "forbidden"),
    ("https://0.0.0.0/", "forbidden"),
    ("https://2130706433/", "forbidden"),
    ("https://2852039166/", "forbidden"),
    ("https://0x7f000001/", "forbidden"),
    ("https://0x7f.1/", "forbidden"),
    ("https://0177.0.0.1/", "forbidden"),
    ("https://0177.0.0.01/", "forbidden"),
    ("https://127.1/", "forbidden"),
    ("https://127.0.1/", "forbidden"),
    ("https://0xA9.0xFE.0xA9.0xFE/", "forbidden"),
    ("https://0251.0376.0251.0376/", "forbidden"),
    ("https://0/", "forbidden"),
    ("https://１２７.０.０.１/", "forbidden"),
    ("https://0x5d.184.216.34/", "invalid_argument"),  # public, but non-canonical spellings are refused outright
    ("https://1.2.3.256/", "invalid_argument"),
    ("https://1.2.3.4.5/", "invalid_argument"),
    ("https://08.1.1.1/", "invalid_argument"),
    # IPv6 literals and IPv4-in-IPv6 forms
    ("https://[::1]/", "forbidden"),
    ("https://[::]/", "forbidden"),
    ("https://[0:0:0:0:0:0:0:1]/", "forbidden"),
    ("https://[::ffff:127.0.0.1]/", "forbidden"),
    ("https://[::ffff:7f00:1]/", "forbidden"),
    ("https://[::ffff:169.254.169.254]/", "forbidden"),
    ("https://[::ffff:0:a9fe:a9fe]/", "forbidden"),
    ("https://[::127.0.0.1]/", "forbidden"),
    ("https://[::a9fe:a9fe]/", "forbidden"),
    ("https://[64:ff9b::127.0.0.1]/", "forbidden"),
    ("https://[64:ff9b::a9fe:a9fe]/", "forbidden"),
    ("https://[64:ff9b:1::a00:1]/", "forbidden"),
    ("https://[2002:a9fe:a9fe::]/", "forbidden"),
    ("https://[2002:7f00:1::1]/", "forbidden"),
    ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "forbidden"),
    ("https://[fe80::1]/", "forbidden"),
    ("https://[fe80::1%25eth0]/", "invalid_argument"),
    ("https://[fc00::1]/", "forbidden"),
    ("https://[fec0::1]/", "forbidden"),
    ("https://[ff02::1]/", "forbidden"),
    ("https://[2001:db8::1]/", "forbidden"),
    # names whose DNS answers are forbidden (every answer is checked)
    *[
        (f"https://{host}/ok.png", "forbidden")
        for host, answers in DNS.items()
        if host
        not in {
            "img.example",
            "v6.example",
            "dual.example",
            "garbage.example",
            "empty.example",
            "rebind.example",
            "rebind-meta.example",
        }
    ],
    ("https://garbage.example/ok.png", "forbidden"),
    ("https://empty.example/ok.png", "invalid_argument"),
    ("https://nxdomain.example/ok.png", "invalid_argument"),
    # userinfo tricks and malformed URLs
    ("https://img.example@127.0.0.1/", "invalid_argument"),
    ("https://user:pass@img.example/ok.png", "invalid_argument"),
    ("https://img.example%40127.0.0.1/", "invalid_argument"),
    ("https://img.example\\@127.0.0.1/", "invalid_argument"),
    ("https://img.example /ok.png", "invalid_argument"),
    ("https://img.example/ok.png\r\nX-Injected: 1", "invalid_argument"),
    ("https:///ok.png", "invalid_argument"),
    ("https://-bad-.example/", "invalid_argument"),
    # schemes and ports
    ("http://img.example/ok.png", "invalid_argument"),
    ("ftp://img.example/ok.png", "invalid_argument"),
    ("file:///etc/passwd", "invalid_argument"),
    ("gopher://img.example:70/_GET", "invalid_argument"),
    ("data:image/png;base64,AAAA", "invalid_argument"),
    ("//img.example/ok.png", "invalid_argument"),
    ("https://img.example:22/ok.png", "invalid_argument"),
    ("https://img.example:6379/ok.png", "invalid_argument"),
    ("https://img.example:0/ok.png", "invalid_argument"),
    ("https://img.example:99999/ok.png", "invalid_argument"),
    # redirects from a public-looking host to private ones, and redirect abuse
    ("https://img.example/to-meta", "forbidden"),
    ("https://img.example/to-meta-https", "forbidden"),
    ("https://img.example/to-meta-name", "forbidden"),
    ("https://img.example/to-private-name", "forbidden"),
    ("https://img.example/to-decimal", "forbidden"),
    ("https://img.example/to-userinfo", "invalid_argument"),
    ("https://img.example/to-http", "invalid_argument"),
    ("https://img.example/to-file", "invalid_argument"),
    ("https://img.example/loop", "invalid_argument"),
    # bodies: not images, too large, compressed, errors
    ("https://img.example/lying-type.png", "invalid_argument"),
    ("https://img.example/gzip.png", "invalid_argument"),
    ("https://img.example/big-declared", "invalid_argument"),
    ("https://img.example/big-eof", "invalid_argument"),
    ("https://img.example/big-chunked", "invalid_argument"),
    ("https://img.example/notfound", "invalid_argument"),
    ("https://img.example/oops", "upstream_error"),
    ("https://img.example/truncated", "upstream_error"),
    ("https://img.example/garbage-status", "upstream_error"),
    ("https://img.example/no-location", "upstream_error"),
]


@pytest.mark.parametrize(("url", "code"), HOSTILE, ids=[u[:70] for u, _ in HOSTILE])
async def test_hostile_url_is_refused(lab: Lab, url: str, code: str) -> None:
    err = await _error(lab.make().fetch(url, max_bytes=4096))
    assert err.code.value == code, err
    lab.assert_only_public_connections()
    assert "SECRET-BODY-TEXT" not in str(err.to_dict())
    if code == "forbidden" and "/to-" not in url:
        assert lab.connector.calls == []  # judged by the validator, never connected


@pytest.mark.parametrize("url", [u for u, c in HOSTILE if c == "forbidden" and "/to-" not in u])
async def test_forbidden_urls_are_refused_even_when_allowlisted_for_http(lab: Lab, url: str) -> None:
    """The http allowlist relaxes the scheme only, never the address policy."""
    hosts = ["169.254.169.254", "127.0.0.1", "metadata.google.internal", "localhost", "private.example"]
    fetcher = lab.make(allow_http_hosts=hosts)
    err = await _error(fetcher.fetch(url.replace("https://", "http://", 1), max_bytes=4096))
    assert err.code.value in {"forbidden", "invalid_argument"}
    assert lab.connector.calls == []


# ---------------------------------------------------------------------------------------------------------------------
# What is allowed works, through the vetted address
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ok.png", PNG),
        ("/ok.jpg", JPEG),
        ("/ok.gif", GIF),
        ("/ok.webp", WEBP),
        ("/chunked.png", PNG),
        ("/eof.png", PNG),
    ],
)
async def test_public_image_is_fetched_from_the_vetted_address(lab: Lab, path: str, body: bytes) -> None:
    lab.origin.routes["/ok.png"] = respond(200, PNG)
    fetched = await lab.make(allow_http_hosts=["img.example"]).fetch(f"http://img.example{path}", max_bytes=4096)
    assert fetched.data == body
    assert fetched.url == f"http://img.example{path}"
    assert lab.connector.calls == [(PUBLIC_V4, 80, None)]
    assert lab.resolver.lookups == [("img.example", 80)]  # resolved once, connected to what was checked
    seen = lab.origin.requests[-1]
    assert (seen.method, seen.target, seen.headers["host"]) == ("GET", path, "img.example")
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["connection"] == "close"


async def test_ipv6_and_dual_stack_answers_are_all_checked_then_used(lab: Lab) -> None:
    fetcher = lab.make(allow_http_hosts=["v6.example", "dual.example"])
    assert (await fetcher.fetch("http://v6.example/ok.png", max_bytes=4096)).data == PNG
    assert (await fetcher.fetch("http://dual.example/ok.png", max_bytes=4096)).data == PNG
    assert [ip for ip, _, _ in lab.connector.calls] == [PUBLIC_V6, PUBLIC_V4]


async def test_content_type_is_reported_but_not_trusted(lab: Lab) -> None:
    fetcher = lab.make(allow_http_hosts=["img.example"])
    fetched = await fetcher.fetch("http://img.example/png-as-html", max_bytes=4096)
    assert fetched.data == PNG and fetched.content_type == "text/html"
    text = await fetcher.fetch("http://img.example/lying-type.png", max_bytes=4096, require_image=False)
    assert text.data.startswith(b"<html>")


async def test_http_allowlist_entries_with_ports(lab: Lab) -> None:
    fetcher = lab.make(allow_http_hosts=["img.example:8080"])
    assert (await fetcher.fetch("http://img.example:8080/ok.png", max_bytes=4096)).data == PNG
    assert lab.connector.calls == [(PUBLIC_V4, 8080, None)]
    assert lab.origin.requests[-1].headers["host"] == "img.example:8080"
    err = await _error(fetcher.fetch("http://img.example/ok.png", max_bytes=4096))  # port 80 is not listed
    assert err.code.value == "invalid_argument"


async def test_from_settings_uses_the_fetch_settings(lab: Lab) -> None:
    settings = Settings(fetch_allow_http_hosts="img.example", fetch_max_redirects=1, fetch_timeout_seconds=3)
    fetcher = GuardedFetcher.from_settings(settings, resolver=lab.resolver, connector=lab.connector)
    assert fetcher.max_redirects == 1 and fetcher.timeout_seconds == 3
    assert (await fetcher.fetch("http://img.example/ok.png", max_bytes=4096)).data == PNG
    assert (await _error(fetcher.fetch("http://img.example/r2", max_bytes=4096))).code.value == "invalid_argument"
    await fetcher.aclose()


async def test_private_allowlist_admits_an_operator_named_host_but_never_link_local(lab: Lab) -> None:
    fetcher = lab.make(
        allow_http_hosts=["loop.example", "meta.example"], allow_private_hosts=["loop.example", "meta.example"]
    )
    assert (await fetcher.fetch("http://loop.example/ok.png", max_bytes=4096)).data == PNG
    assert (await _error(fetcher.fetch("http://meta.example/ok.png", max_bytes=4096))).code.value == "forbidden"
    # Not listed: still refused.
    assert (await _error(fetcher.fetch("https://private.example/ok.png", max_bytes=4096))).code.value == "forbidden"
    assert [ip for ip, _, _ in lab.connector.calls] == ["127.0.0.1"]


# ---------------------------------------------------------------------------------------------------------------------
# Redirects
# ---------------------------------------------------------------------------------------------------------------------


async def test_redirects_are_followed_up_to_the_cap(lab: Lab) -> None:
    fetcher = lab.make(allow_http_hosts=["img.example"], max_redirects=3)
    fetched = await fetcher.fetch("http://img.example/r1", max_bytes=4096)
    assert fetched.data == PNG and fetched.url == "http://img.example/ok.png"
    assert [r.target for r in lab.origin.requests] == ["/r1", "/r2", "/r3", "/ok.png"]
    assert len(lab.resolver.lookups) == 4  # every hop re-resolved and re-checked
    err = await _error(
        lab.make(allow_http_hosts=["img.example"], max_redirects=2).fetch("http://img.example/r1", max_bytes=4096)
    )
    assert err.code.value == "invalid_argument" and "redirect" in err.message
    relative = await fetcher.fetch("http://img.example/to-relative", max_bytes=4096)
    assert relative.url == "http://img.example/ok.png"


async def test_redirect_to_private_never_connects_there(lab: Lab) -> None:
    err = await _error(lab.make().fetch("https://img.example/to-meta", max_bytes=4096))
    assert err.code.value == "forbidden"
    assert [r.target for r in lab.origin.requests] == ["/to-meta"]
    assert lab.connector.ips() == [PUBLIC_V4]


async def test_zero_redirects_allowed(lab: Lab) -> None:
    err = await _error(
        lab.make(max_redirects=0, allow_http_hosts=["img.example"]).fetch("http://img.example/r3", max_bytes=4096)
    )
    assert err.code.value == "invalid_argument"


# ---------------------------------------------------------------------------------------------------------------------
# DNS rebinding: the answer changes between two lookups
# ---------------------------------------------------------------------------------------------------------------------


async def test_dns_rebinding_between_fetches(lab: Lab) -> None:
    fetcher = lab.make(allow_http_hosts=["rebind.example"])
    assert (await fetcher.fetch("http://rebind.example/ok.png", max_bytes=4096)).data == PNG
    err = await _error(fetcher.fetch("http://rebind.example/ok.png", max_bytes=4096))
    assert err.code.value == "forbidden"
    assert lab.connector.ips() == [PUBLIC_V4]  # the second, rebound answer was never connected to


async def test_dns_rebinding_across_a_redirect(lab: Lab) -> None:
    lab.origin.routes["/to-self"] = redirect("https://rebind-meta.example/ok.png")
    err = await _error(lab.make().fetch("https://rebind-meta.example/to-self", max_bytes=4096))
    assert err.code.value == "forbidden"
    assert lab.resolver.lookups == [("rebind-meta.example", 443), ("rebind-meta.example", 443)]
    assert lab.connector.ips() == [PUBLIC_V4]


# ---------------------------------------------------------------------------------------------------------------------
# Time limits
# ---------------------------------------------------------------------------------------------------------------------


async def test_slow_drip_body_is_cut_by_the_overall_limit(lab: Lab) -> None:
    fetcher = lab.make(timeout_seconds=0.5, total_timeout_seconds=1.0)
    started = time.monotonic()
    err = await _error(fetcher.fetch("https://img.example/slow-drip", max_bytes=10**6))
    assert err.code.value == "upstream_timeout" and err.retryable
    assert time.monotonic() - started < 3.0


async def test_silent_server_hits_the_read_timeout(lab: Lab) -> None:
    started = time.monotonic()
    err = await _error(
        lab.make(timeout_seconds=0.3, total_timeout_seconds=5).fetch("https://img.example/silent", max_bytes=4096)
    )
    assert err.code.value == "upstream_timeout"
    assert time.monotonic() - started < 2.0


async def test_connect_timeout(lab: Lab) -> None:
    lab.connector.hang = True
    err = await _error(lab.make(timeout_seconds=0.3).fetch("https://img.example/ok.png", max_bytes=4096))
    assert err.code.value == "upstream_timeout"


async def test_slow_dns_is_a_timeout(lab: Lab) -> None:
    async def slow_resolver(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return [PUBLIC_V4]

    fetcher = GuardedFetcher(resolver=slow_resolver, connector=lab.connector, timeout_seconds=0.2)
    assert (await _error(fetcher.fetch("https://img.example/ok.png", max_bytes=4096))).code.value == "upstream_timeout"
    assert lab.connector.calls == []


async def test_caller_budget_caps_the_fetch(lab: Lab) -> None:
    started = time.monotonic()
    err = await _error(
        lab.make(timeout_seconds=5).fetch("https://img.example/silent", max_bytes=4096, within_seconds=0.3)
    )
    assert err.code.value == "upstream_timeout"
    assert time.monotonic() - started < 2.0


async def test_size_cap_is_exact(lab: Lab) -> None:
    fetcher = lab.make(allow_http_hosts=["img.example"])
    assert len((await fetcher.fetch("http://img.example/eof.png", max_bytes=len(PNG))).data) == len(PNG)
    err = await _error(fetcher.fetch("http://img.example/eof.png", max_bytes=len(PNG) - 1))
    assert err.code.value == "invalid_argument"
    err = await _error(fetcher.fetch("http://img.example/chunked.png", max_bytes=len(PNG) - 1))
    assert err.code.value == "invalid_argument"


# ---------------------------------------------------------------------------------------------------------------------
# TLS: SNI and certificate checked against the URL's host while connecting to the vetted IP
# ---------------------------------------------------------------------------------------------------------------------


async def test_tls_uses_sni_and_verifies_the_certificate_for_the_url_host() -> None:
    tls = make_tls(["img.example"])
    async with Origin({"/ok.png": respond(200, PNG)}, ssl_context=tls.server) as origin:
        resolver = FakeResolver({"img.example": [PUBLIC_V4], "other.example": [PUBLIC_V4]})
        connector = RecordingConnector(lambda: origin.port, ssl_context=tls.client)
        fetcher = GuardedFetcher(resolver=resolver, connector=connector, timeout_seconds=2)
        fetched = await fetcher.fetch("https://img.example/ok.png", max_bytes=4096)
        assert fetched.data == PNG
        assert connector.calls == [(PUBLIC_V4, 443, "img.example")]
        assert origin.requests[-1].sni == "img.example"
        # Same server, wrong name: the certificate does not match, so nothing is fetched.
        err = await _error(fetcher.fetch("https://other.example/ok.png", max_bytes=4096))
        assert err.code.value == "invalid_argument" and "certificate" in err.message
        assert len(origin.requests) == 1


async def test_tls_with_an_untrusted_certificate_fails() -> None:
    tls, stranger = make_tls(["img.example"]), make_tls(["img.example"])
    async with Origin({"/ok.png": respond(200, PNG)}, ssl_context=tls.server) as origin:
        connector = RecordingConnector(lambda: origin.port, ssl_context=stranger.client)
        fetcher = GuardedFetcher(resolver=FakeResolver({"img.example": [PUBLIC_V4]}), connector=connector)
        err = await _error(fetcher.fetch("https://img.example/ok.png", max_bytes=4096))
        assert err.code.value == "invalid_argument"
        assert origin.requests == []


# ---------------------------------------------------------------------------------------------------------------------
# The production resolver and connector (numeric hosts only: no DNS query ever leaves the machine)
# ---------------------------------------------------------------------------------------------------------------------


async def test_system_resolver_on_numeric_hosts() -> None:
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    assert await system_resolver("::1", 443) == ["::1"]


async def test_default_parts_end_to_end_with_an_operator_trusted_loopback_origin() -> None:
    async with Origin({"/ok.png": respond(200, PNG), "/to-meta": redirect("http://169.254.169.254/")}) as origin:
        entry = f"127.0.0.1:{origin.port}"
        fetcher = GuardedFetcher(allow_http_hosts=[entry], allow_private_hosts=[entry], timeout_seconds=2)
        fetched = await fetcher.fetch(f"http://{entry}/ok.png", max_bytes=4096)
        assert fetched.data == PNG and origin.requests[-1].headers["host"] == entry
        assert (await _error(fetcher.fetch(f"http://{entry}/to-meta", max_bytes=4096))).code.value == "forbidden"
        # Same origin, not trusted: refused before any connection.
        before = len(origin.requests)
        plain = GuardedFetcher(allow_http_hosts=[entry], timeout_seconds=2)
        assert (await _error(plain.fetch(f"http://{entry}/ok.png", max_bytes=4096))).code.value == "forbidden"
        assert len(origin.requests) == before
