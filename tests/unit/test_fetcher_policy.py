"""The fetcher's pure policy: address judgement, IPv4 literal parsing, URL validation, magic-byte sniffing."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegen_mcp.errors import ImageGenError
from imagegen_mcp.images.fetcher import GuardedFetcher, sniff_image_type
from imagegen_mcp.images.url_policy import (
    HostList,
    embedded_ipv4,
    is_forbidden_address,
    parse_ipv4_literal,
    validate_url,
)

FORBIDDEN = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.0.170",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:0:7f00:1",
    "::127.0.0.1",
    "::8.8.8.8",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1",
    "100::1",
    "2001::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "2002:0a00:0001::1",
    "3fff::1",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "febf::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "fd00:ec2::254",
    "fe80::1%eth0",
    "not an ip",
    "",
    "1.2.3",
]
ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "142.250.80.46",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "192.0.1.1",
    "198.20.0.1",
    "223.255.255.254",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
    "2002:5db8:d822::1",
]


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_forbidden_addresses(ip: str) -> None:
    assert is_forbidden_address(ip) is not None


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_addresses(ip: str) -> None:
    assert is_forbidden_address(ip) is None


def test_reasons_name_the_problem() -> None:
    assert "metadata" in (is_forbidden_address("169.254.169.254") or "")
    assert "IPv4-mapped" in (is_forbidden_address("::ffff:127.0.0.1") or "")
    assert "NAT64" in (is_forbidden_address("64:ff9b::a9fe:a9fe") or "")
    assert "6to4" in (is_forbidden_address("2002:a9fe:a9fe::") or "")


def _embeddings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    n = int(v4)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | n),  # ::ffff:a.b.c.d
        ipaddress.IPv6Address((0xFFFF << 48) | n),  # ::ffff:0:a.b.c.d
        ipaddress.IPv6Address((0x64FF9B << 96) | n),  # 64:ff9b::a.b.c.d
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),  # 2002:aabb:ccdd::
    ]


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_embedded_in_ipv6_is_judged_like_the_ipv4(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    for v6 in _embeddings(v4):
        assert embedded_ipv4(v6) is not None and embedded_ipv4(v6)[1] == v4  # type: ignore[index]
        assert (is_forbidden_address(v6) is None) == (is_forbidden_address(v4) is None), (v4, v6)
    assert is_forbidden_address(ipaddress.IPv6Address(n)) is not None  # ::a.b.c.d is never allowed


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_at_least_as_strict_as_the_standard_library_v4(n: int) -> None:
    ip = ipaddress.IPv4Address(n)
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        assert is_forbidden_address(ip) is not None


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_at_least_as_strict_as_the_standard_library_v6(n: int) -> None:
    ip = ipaddress.IPv6Address(n)
    if not ip.is_global or ip.is_multicast or ip.is_link_local or ip.is_site_local:
        assert is_forbidden_address(ip) is not None


# ---------------------------------------------------------------------------------------------------------------------
# IPv4 literals in every spelling parse like inet_aton (the parser most resolvers use)
# ---------------------------------------------------------------------------------------------------------------------


def _spell(value: int, style: str) -> str:
    return {"dec": str(value), "oct": "0" + format(value, "o"), "hex": "0x" + format(value, "x")}[style]


@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=1, max_value=4),
    st.lists(st.sampled_from(["dec", "oct", "hex"]), min_size=4, max_size=4),
)
def test_ipv4_literal_forms_match_inet_aton(n: int, parts: int, styles: list[str]) -> None:
    octets = list(n.to_bytes(4, "big"))
    head = octets[: parts - 1]
    tail = int.from_bytes(bytes(octets[parts - 1 :]), "big")
    text = ".".join(_spell(v, s) for v, s in zip([*head, tail], styles, strict=False))
    parsed = parse_ipv4_literal(text)
    assert parsed is not None
    assert parsed[0] == ipaddress.IPv4Address(socket.inet_aton(text))
    assert parsed[0] == ipaddress.IPv4Address(n)
    assert parsed[1] == (text == str(ipaddress.IPv4Address(n)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("93.184.216.34", "93.184.216.34"),
        ("93.184.216.34.", "93.184.216.34"),
    ],
)
def test_ipv4_literal_examples(text: str, expected: str) -> None:
    parsed = parse_ipv4_literal(text)
    assert parsed is not None and str(parsed[0]) == expected


@pytest.mark.parametrize("text", ["example.com", "a.b.c", "0x.example", "img-1.example"])
def test_hostnames_are_not_ipv4_literals(text: str) -> None:
    assert parse_ipv4_literal(text) is None


@pytest.mark.parametrize("text", ["1.2.3.256", "256.1.1.1", "1.2.3.4.5", "08.1.1.1", "a.1", "1..1", "4294967296"])
def test_malformed_ipv4_literals_are_invalid(text: str) -> None:
    with pytest.raises(ImageGenError) as info:
        parse_ipv4_literal(text)
    assert info.value.code.value == "invalid_argument"


# ---------------------------------------------------------------------------------------------------------------------
# URL validation (no network)
# ---------------------------------------------------------------------------------------------------------------------

NONE = HostList([])


@pytest.mark.parametrize(
    ("url", "target", "host_header"),
    [
        ("https://img.example/a.png", "/a.png", "img.example"),
        ("https://IMG.Example./a.png?x=1&y=2#frag", "/a.png?x=1&y=2", "img.example"),
        ("https://img.example", "/", "img.example"),
        ("https://img.example:443/a b.png".replace(" ", "%20"), "/a%20b.png", "img.example"),
        ("https://img.example/ü.png", "/%C3%BC.png", "img.example"),
        ("https://bücher.example/x", "/x", "xn--bcher-kva.example"),
        ("https://[2606:4700:4700::1111]/x", "/x", "[2606:4700:4700::1111]"),
        ("https://93.184.216.34/x", "/x", "93.184.216.34"),
    ],
)
def test_valid_urls_are_normalized(url: str, target: str, host_header: str) -> None:
    t = validate_url(url, allow_http=NONE)
    assert (t.request_target, t.host_header, t.port) == (target, host_header, 443)


def test_http_allowlist() -> None:
    allow = HostList(["cdn.example", "dev.example:8080", "[2606:4700:4700::1111]:8081", "http://legacy.example/"])
    assert validate_url("http://cdn.example/a", allow_http=allow).port == 80
    assert validate_url("http://dev.example:8080/a", allow_http=allow).host_header == "dev.example:8080"
    assert validate_url("http://[2606:4700:4700::1111]:8081/", allow_http=allow).port == 8081
    assert validate_url("http://legacy.example/a", allow_http=allow).host == "legacy.example"
    for bad in ("http://cdn.example:8080/", "http://dev.example/", "http://other.example/"):
        with pytest.raises(ImageGenError) as info:
            validate_url(bad, allow_http=allow)
        assert info.value.code.value == "invalid_argument"
    # A host:port entry also admits https on that port; a bare host does not open other ports.
    assert validate_url("https://dev.example:8080/", allow_http=allow).port == 8080
    with pytest.raises(ImageGenError):
        validate_url("https://cdn.example:8443/", allow_http=allow)


@pytest.mark.parametrize("url", ["", "x" * 9000, "https://a.example/\x00", "https://a.example/\t", 42])
def test_garbage_urls(url: object) -> None:
    with pytest.raises(ImageGenError) as info:
        validate_url(url, allow_http=NONE)  # type: ignore[arg-type]
    assert info.value.code.value == "invalid_argument"


@given(st.text(max_size=200))
def test_validate_url_only_ever_raises_typed_errors(text: str) -> None:
    try:
        target = validate_url(text, allow_http=NONE)
    except ImageGenError as e:
        assert e.code.value in {"invalid_argument", "forbidden"}
    else:
        assert target.scheme == "https" and target.port == 443
        assert target.ip is None or is_forbidden_address(target.ip) is None
        assert target.request_target.isascii() and " " not in target.request_target


def test_fetcher_validate_uses_its_allowlists() -> None:
    fetcher = GuardedFetcher(allow_http_hosts=["cdn.example"], allow_private_hosts=["localhost:9000", "127.0.0.1"])
    assert fetcher.validate("http://cdn.example/x").scheme == "http"
    assert fetcher.validate("https://localhost:9000/x").port == 9000  # trusted: name and port rules relaxed
    assert fetcher.validate("https://127.0.0.1/x").host == "127.0.0.1"
    for url in ("https://localhost/x", "https://127.0.0.2/x", "https://localhost:9001/x"):
        with pytest.raises(ImageGenError) as info:
            fetcher.validate(url)
        assert info.value.code.value == "forbidden"


def test_constructor_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        GuardedFetcher(max_redirects=-1)
    with pytest.raises(ValueError):
        GuardedFetcher(timeout_seconds=0)


# ---------------------------------------------------------------------------------------------------------------------
# Magic bytes
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0....", "image/jpeg"),
        (b"GIF87a....", "image/gif"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"BM\x00\x00", None),
        (b"II*\x00", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"<html>", None),
        (b"", None),
        (b"\x89PNG", None),
    ],
)
def test_sniff_image_type(data: bytes, mime: str | None) -> None:
    assert sniff_image_type(data) == mime
