"""The SSRF policy, pure: URL validation, IP literal parsing, address classification and operator host lists."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import ErrorCode, ImageGenError
from ..errors import invalid as _invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS = 8192
DEFAULT_PORTS = {"https": 443, "http": 80}

# --------------------------------------------------------------------------------------------------------------------
# Address policy (pure functions)
# --------------------------------------------------------------------------------------------------------------------

_V4_RULES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified / this-network address"),
        ("10.0.0.0/8", "private address (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT address (RFC 6598)"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address (cloud metadata server)"),
        ("172.16.0.0/12", "private address (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation address"),
        ("192.88.99.0/24", "6to4 relay anycast address"),
        ("192.168.0.0/16", "private address (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address"),
    )
)

# IPv6 prefixes that carry an IPv4 address: judged by the address they embed.
_V6_EMBEDDING: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), name)
    for net, name in (
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::ffff:0:0:0/96", "IPv4-translated"),
        ("64:ff9b::/96", "NAT64"),
    )
)

_V6_RULES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("::/96", "IPv4-compatible address (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("100::/64", "discard-only address"),
        ("2001::/32", "Teredo tunnel address"),
        ("2001:db8::/32", "documentation address"),
        ("3fff::/20", "documentation address"),
        ("fc00::/7", "unique local address"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
    )
)

_LINK_LOCAL = (ipaddress.IPv4Network("169.254.0.0/16"), ipaddress.IPv6Network("fe80::/10"))


def parse_ip(ip: str | IPAddress) -> IPAddress | None:
    """`ip` as an address object, or None when it is not an IP address."""
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ip
    try:
        return ipaddress.ip_address(ip.strip())
    except ValueError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, NAT64, 6to4, Teredo client), if any."""
    for net, name in _V6_EMBEDDING:
        if ip in net:
            return name, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    return None


def is_forbidden_address(ip: str | IPAddress) -> str | None:
    """Why the fetcher must not connect to `ip`, or None when it is a public unicast address."""
    addr = parse_ip(ip)
    if addr is None:
        return "not an IP address"
    if isinstance(addr, ipaddress.IPv4Address):
        for v4_net, reason in _V4_RULES:
            if addr in v4_net:
                return reason
        return None if addr.is_global else "not a globally routable address"
    if addr.scope_id:
        return "scoped IPv6 address"
    embedded = embedded_ipv4(addr)
    if embedded is not None:
        name, v4 = embedded
        inner = is_forbidden_address(v4)
        if inner is not None:
            return f"{name} form of a forbidden IPv4 address ({inner})"
        if name in {"IPv4-mapped", "IPv4-translated", "NAT64", "6to4"}:
            return None
    for net, reason in _V6_RULES:
        if addr in net:
            return reason
    return None if addr.is_global else "not a globally routable address"


# --------------------------------------------------------------------------------------------------------------------
# URL policy
# --------------------------------------------------------------------------------------------------------------------

_FORBIDDEN_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data", "kubernetes"})
_FORBIDDEN_SUFFIXES = (
    ".localhost",
    ".internal",
    ".local",
    ".localdomain",
    ".home.arpa",
    ".arpa",
    ".intranet",
    ".lan",
    ".corp",
    ".home",
    ".svc",
    ".cluster.local",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class Target:
    """One validated hop: where to connect and what to send."""

    url: str
    scheme: str
    host: str  # normalized: lower-case ASCII hostname, or an IP address's canonical text
    ip: IPAddress | None  # set when the URL names an IP literal
    port: int
    request_target: str
    host_header: str

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def forbidden(message: str, **details: Any) -> ImageGenError:
    """The typed refusal of a URL or address the policy does not allow."""
    return ImageGenError(ErrorCode.FORBIDDEN, message, details=details or None)


def parse_ipv4_literal(host: str) -> tuple[ipaddress.IPv4Address, bool] | None:
    """Parse `host` the way URL parsers and inet_aton do (decimal, 0-octal, 0x-hex, 1-4 parts).

    Returns (address, canonical) — canonical means plain dotted-quad decimal — or None if `host`
    does not end in a number (so it is a hostname). Raises invalid_argument for malformed numbers.
    """
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if not _NUMERIC_PART.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        raise _invalid("host looks like an IPv4 address but is not a valid one")
    values: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                raise _invalid("host looks like an IPv4 address but is not a valid one")
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise _invalid("host looks like an IPv4 address but is not a valid one")
    number = last
    for i, v in enumerate(head):
        number += v << (8 * (3 - i))
    addr = ipaddress.IPv4Address(number)
    canonical = ".".join(parts) == str(addr)
    return addr, canonical


def _normalize_host(raw: str) -> tuple[str, IPAddress | None]:
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1]
        if "%" in inner:
            raise _invalid("IPv6 zone identifiers are not allowed in URLs")
        try:
            return str(ipaddress.IPv6Address(inner)), ipaddress.IPv6Address(inner)
        except ValueError:
            raise _invalid("malformed IPv6 address in URL") from None
    if "%" in raw:
        raise _invalid("percent-encoded hosts are not allowed")
    host = raw.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _invalid("host is not a valid internationalized domain name") from None
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise _invalid("URL has no host")
    v4 = parse_ipv4_literal(host)
    if v4 is not None:
        addr, canonical = v4
        if not canonical:
            reason = is_forbidden_address(addr)
            if reason is not None:
                raise forbidden(f"URL host is a forbidden address: {reason}", host=str(addr))
            raise _invalid("non-canonical IPv4 literal in URL; write it as a dotted quad", host=str(addr))
        return str(addr), addr
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise _invalid("URL host is not a valid hostname")
    return host, None


def _check_host_name(host: str) -> None:
    if host in _FORBIDDEN_NAMES or host.endswith(_FORBIDDEN_SUFFIXES):
        raise forbidden("URL host names an internal or local service", host=host)
    if "." not in host:
        raise forbidden("single-label host names are not allowed (they resolve to internal services)", host=host)


def _parse_entry(entry: str) -> tuple[str, int | None]:
    """'host' or 'host:port' or '[v6]:port' of an allowlist, normalized like URL hosts."""
    text = entry.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.rstrip("/")
    port: int | None = None
    if text.startswith("["):
        host_part, _, rest = text.partition("]")
        host_part += "]"
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host_part, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host_part = text
    if host_part.startswith("["):
        return str(ipaddress.IPv6Address(host_part[1:-1])), port
    return host_part.rstrip("."), port


class HostList:
    """An operator allowlist of `host` / `host:port` entries (a bare host means the scheme's default port)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._entries = {_parse_entry(e) for e in entries if e.strip()}

    def allows(self, host: str, port: int, default_port: int) -> bool:
        return (host, port) in self._entries or (port == default_port and (host, None) in self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)


def remove_dot_segments(path: str) -> str:
    """An absolute path without its `.` and `..` segments, exactly as httpx2 sends it.

    Like RFC 3986 5.2.4, except that a final dot segment leaves no trailing slash ("/a/b/.." is "/a"):
    httpx2's rule, mirrored so that the validated target is the requested one.
    """
    if "." not in path:
        return path
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(kept) > 1:  # never above the root (kept[0] is the "" before the leading slash)
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    return "/".join(kept) or "/"


def validate_url(url: str, *, allow_http: HostList, trusted: HostList | None = None) -> Target:
    """Check one URL against the policy (scheme, userinfo, port, host name, IP literal); no DNS here."""
    if not isinstance(url, str) or not url:
        raise _invalid("URL must be a non-empty string")
    if len(url) > MAX_URL_CHARS:
        raise _invalid(f"URL is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise _invalid("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _invalid("malformed URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _invalid("only https URLs can be fetched", scheme=scheme or None)
    netloc = parts.netloc
    if "@" in netloc:
        raise _invalid("URLs with user information (user@host) are not allowed")
    host_text, port_text = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _invalid("malformed IPv6 address in URL")
        host_text, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise _invalid("malformed URL authority")
            port_text = rest[1:]
    elif ":" in netloc:
        host_text, _, port_text = netloc.partition(":")
    default_port = DEFAULT_PORTS[scheme]
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _invalid("URL has an invalid port")
        port = int(port_text)
    else:
        port = default_port
    host, ip = _normalize_host(host_text)
    is_trusted = trusted is not None and trusted.allows(host, port, default_port)
    if ip is not None and not is_trusted:
        reason = is_forbidden_address(ip)
        if reason is not None:
            raise forbidden(f"URL host is a forbidden address: {reason}", host=host)
    if ip is None and not is_trusted:
        _check_host_name(host)
    if scheme == "http" and not allow_http.allows(host, port, default_port):
        raise _invalid("plain http is not allowed for this host; use https", host=host)
    # A `host:port` entry of either allowlist also admits https on that non-default port.
    if scheme == "https" and port != default_port and not is_trusted and not allow_http.allows(host, port, 443):
        raise _invalid("https URLs must use the default port 443", port=port)
    path = remove_dot_segments(quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~"))
    query = quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    request_target = path + (f"?{query}" if parts.query else "")
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    return Target(
        url=f"{scheme}://{host_header}{request_target}",
        scheme=scheme,
        host=host,
        ip=ip,
        port=port,
        request_target=request_target,
        host_header=host_header,
    )


def vet_addresses(target: Target, addresses: Sequence[IPAddress], trusted: HostList) -> None:
    """Refuse (forbidden) when any address `target.host` resolved to may not be connected to.

    An operator-trusted host may resolve to private addresses, but never to link-local ones (metadata servers).
    """
    is_trusted = trusted.allows(target.host, target.port, DEFAULT_PORTS[target.scheme])
    for addr in addresses:
        if is_trusted:
            if any(addr in net for net in _LINK_LOCAL if net.version == addr.version):
                raise forbidden("the URL host resolves to a link-local address", host=target.host)
            continue
        reason = is_forbidden_address(addr)
        if reason is not None:
            raise forbidden(f"the URL host resolves to a forbidden address: {reason}", host=target.host)


def parse_answers(host: str, answers: Iterable[str]) -> list[IPAddress]:
    """A DNS lookup's answers for `host` as addresses: forbidden if one is not an IP, invalid if there are none."""
    addresses: list[IPAddress] = []
    for answer in answers:
        addr = parse_ip(answer)
        if addr is None:
            raise forbidden("the URL host resolved to something that is not an IP address", host=host)
        addresses.append(addr)
    if not addresses:
        raise _invalid("could not resolve the URL host", host=host)
    return addresses
