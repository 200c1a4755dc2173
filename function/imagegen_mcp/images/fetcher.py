"""The guarded (SSRF-safe) URL fetcher: URL and address policy, vetted connections, capped image downloads."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

from ..errors import ErrorCode, ImageGenError
from ..errors import invalid as _invalid
from .imaging import FORMAT_MIME, sniff_format

if TYPE_CHECKING:
    import ssl

    from ..config import Settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`await resolver(host, port)` -> the IP address strings `host` resolves to (one lookup per hop)."""

MAX_URL_CHARS = 8192
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
_READ_CHUNK = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"https": 443, "http": 80}


class Connector(Protocol):
    """Opens a byte stream to an already-vetted IP address; never resolves names itself.

    `tls_hostname` is the URL's host for https (SNI and certificate check against it), None for plain http.
    """

    def __call__(
        self, ip: str, port: int, *, tls_hostname: str | None
    ) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]: ...


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None  # as the server said; never trusted
    url: str  # final URL after redirects


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


def _parse_ip(ip: str | IPAddress) -> IPAddress | None:
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
    addr = _parse_ip(ip)
    if addr is None:
        return "not an IP address"
    if isinstance(addr, ipaddress.IPv4Address):
        for net, reason in _V4_RULES:
            if addr in net:
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


def _forbidden(message: str, **details: Any) -> ImageGenError:
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
                raise _forbidden(f"URL host is a forbidden address: {reason}", host=str(addr))
            raise _invalid("non-canonical IPv4 literal in URL; write it as a dotted quad", host=str(addr))
        return str(addr), addr
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise _invalid("URL host is not a valid hostname")
    return host, None


def _check_host_name(host: str) -> None:
    if host in _FORBIDDEN_NAMES or host.endswith(_FORBIDDEN_SUFFIXES):
        raise _forbidden("URL host names an internal or local service", host=host)
    if "." not in host:
        raise _forbidden("single-label host names are not allowed (they resolve to internal services)", host=host)


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
            raise _forbidden(f"URL host is a forbidden address: {reason}", host=host)
    if ip is None and not is_trusted:
        _check_host_name(host)
    if scheme == "http" and not allow_http.allows(host, port, default_port):
        raise _invalid("plain http is not allowed for this host; use https", host=host)
    # A `host:port` entry of either allowlist also admits https on that non-default port.
    if scheme == "https" and port != default_port and not is_trusted and not allow_http.allows(host, port, 443):
        raise _invalid("https URLs must use the default port 443", port=port)
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
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


# --------------------------------------------------------------------------------------------------------------------
# Image sniffing
# --------------------------------------------------------------------------------------------------------------------


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of an allowed image format judged by its magic bytes (PNG, JPEG, WEBP, GIF), else None."""
    fmt = sniff_format(data)
    return FORMAT_MIME[fmt] if fmt is not None else None


# --------------------------------------------------------------------------------------------------------------------
# Default resolver and connector
# --------------------------------------------------------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    """One getaddrinfo lookup: every address the system resolver returns for `host`."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


class TcpConnector:
    """Connects to the given IP (no name lookup); for https, TLS with SNI and certificate checks for the URL host."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            import ssl

            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def __call__(
        self, ip: str, port: int, *, tls_hostname: str | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if tls_hostname is None:
            return await asyncio.open_connection(ip, port, limit=MAX_HEADER_BYTES)
        return await asyncio.open_connection(
            ip, port, ssl=self._context(), server_hostname=tls_hostname, limit=MAX_HEADER_BYTES
        )


# --------------------------------------------------------------------------------------------------------------------
# The fetcher
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class _Response:
    status: int
    headers: dict[str, list[str]]

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


class _Budget:
    """The whole fetch's time limit plus the per-operation (connect/read) timeout."""

    def __init__(self, op_timeout: float, total: float) -> None:
        self.op_timeout = op_timeout
        self.end = time.monotonic() + total

    async def run(self, awaitable: Awaitable[Any]) -> Any:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return await asyncio.wait_for(awaitable, min(self.op_timeout, left))


class GuardedFetcher:
    """Downloads image URLs under the SSRF policy; the only way the service fetches a URL."""

    def __init__(
        self,
        *,
        allow_http_hosts: Iterable[str] = (),
        max_redirects: int = 3,
        timeout_seconds: float = 20.0,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        user_agent: str = "imagegen-mcp",
        total_timeout_seconds: float | None = None,
        allow_private_hosts: Iterable[str] = (),
    ) -> None:
        if max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self._allow_http = HostList(allow_http_hosts)
        self._trusted = HostList(allow_private_hosts)
        self.max_redirects = max_redirects
        self.timeout_seconds = timeout_seconds
        self.total_timeout_seconds = total_timeout_seconds or 2 * timeout_seconds
        self._resolver: Resolver = resolver or system_resolver
        self._connector: Connector = connector or TcpConnector()
        self._user_agent = user_agent

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GuardedFetcher:
        kwargs: dict[str, Any] = {
            "allow_http_hosts": settings.fetch_allow_http_hosts,
            "max_redirects": settings.fetch_max_redirects,
            "timeout_seconds": settings.fetch_timeout_seconds,
            "allow_private_hosts": getattr(settings, "fetch_allow_private_hosts", ()),
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def validate(self, url: str) -> Target:
        """Policy check of one URL without any network access (raises ImageGenError)."""
        return validate_url(url, allow_http=self._allow_http, trusted=self._trusted)

    async def fetch(
        self, url: str, *, max_bytes: int, require_image: bool = True, within_seconds: float | None = None
    ) -> Fetched:
        """GET `url` (redirects re-checked per hop); `within_seconds` further caps the whole fetch (a deadline)."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        total = (
            self.total_timeout_seconds if within_seconds is None else min(within_seconds, self.total_timeout_seconds)
        )
        budget = _Budget(self.timeout_seconds, total)
        target = self.validate(url)
        redirects = 0
        try:
            while True:
                result = await self._hop(target, budget, max_bytes=max_bytes, require_image=require_image)
                if isinstance(result, Fetched):
                    return result
                redirects += 1
                if redirects > self.max_redirects:
                    raise _invalid(f"too many redirects (more than {self.max_redirects})")
                target = self.validate(urljoin(target.url, result))
        except TimeoutError:
            raise ImageGenError(
                ErrorCode.UPSTREAM_TIMEOUT, "timed out fetching the image URL", details={"host": target.host}
            ) from None

    async def _resolve(self, target: Target, budget: _Budget) -> list[IPAddress]:
        if target.ip is not None:
            return [target.ip]
        try:
            answers = await budget.run(self._resolver(target.host, target.port))
        except TimeoutError:  # a subclass of OSError: keep it a timeout
            raise
        except (OSError, UnicodeError):
            raise _invalid("could not resolve the URL host", host=target.host) from None
        addresses: list[IPAddress] = []
        for answer in answers or ():
            addr = _parse_ip(answer)
            if addr is None:
                raise _forbidden("the URL host resolved to something that is not an IP address", host=target.host)
            addresses.append(addr)
        if not addresses:
            raise _invalid("could not resolve the URL host", host=target.host)
        return addresses

    def _vet(self, target: Target, addresses: list[IPAddress]) -> None:
        trusted = self._trusted.allows(target.host, target.port, DEFAULT_PORTS[target.scheme])
        for addr in addresses:
            if trusted:
                if any(addr in net for net in _LINK_LOCAL if net.version == addr.version):
                    raise _forbidden("the URL host resolves to a link-local address", host=target.host)
                continue
            reason = is_forbidden_address(addr)
            if reason is not None:
                raise _forbidden(f"the URL host resolves to a forbidden address: {reason}", host=target.host)

    async def _connect(
        self, target: Target, addresses: list[IPAddress], budget: _Budget
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        tls_hostname = target.host if target.scheme == "https" else None
        last: BaseException | None = None
        for addr in addresses:
            try:
                return await budget.run(self._connector(str(addr), target.port, tls_hostname=tls_hostname))
            except TimeoutError:
                raise
            except OSError as exc:
                import ssl

                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise _invalid("TLS certificate verification failed for the URL host", host=target.host) from None
                last = exc
        raise ImageGenError(
            ErrorCode.UPSTREAM_ERROR,
            f"could not connect to the URL host ({type(last).__name__})",
            details={"host": target.host},
        ) from None

    async def _hop(self, target: Target, budget: _Budget, *, max_bytes: int, require_image: bool) -> Fetched | str:
        """One request: the Fetched result, or the Location of a redirect."""
        addresses = await self._resolve(target, budget)
        self._vet(target, addresses)
        reader, writer = await self._connect(target, addresses, budget)
        try:
            request = (
                f"GET {target.request_target} HTTP/1.1\r\n"
                f"Host: {target.host_header}\r\n"
                f"User-Agent: {self._user_agent}\r\n"
                "Accept: image/png,image/jpeg,image/webp,image/gif;q=0.9,*/*;q=0.1\r\n"
                "Accept-Encoding: identity\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(request.encode("ascii"))
            await budget.run(writer.drain())
            response = await self._read_head(reader, budget)
            if response.status in REDIRECT_STATUSES:
                location = response.header("location")
                if not location:
                    raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "redirect without a Location header")
                return location
            if response.status != 200:
                code = ErrorCode.UPSTREAM_ERROR if response.status >= 500 else ErrorCode.INVALID_ARGUMENT
                raise ImageGenError(
                    code, f"the URL answered HTTP {response.status}", details={"status": response.status}
                )
            encoding = (response.header("content-encoding") or "identity").strip().lower()
            if encoding != "identity":
                raise _invalid("the URL answered with a compressed body we did not ask for")
            data = await self._read_body(reader, response, budget, max_bytes=max_bytes, require_image=require_image)
            return Fetched(data=data, content_type=response.header("content-type"), url=target.url)
        except TimeoutError:
            raise
        except (asyncio.IncompleteReadError, OSError) as exc:
            raise ImageGenError(
                ErrorCode.UPSTREAM_ERROR, f"connection to the URL host failed ({type(exc).__name__})"
            ) from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _readline(self, reader: asyncio.StreamReader, budget: _Budget) -> bytes:
        try:
            line: bytes = await budget.run(reader.readuntil(b"\n"))
        except asyncio.LimitOverrunError:
            raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "HTTP response header line too long") from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "the URL host closed the connection early") from None
            raise
        return line

    async def _read_head(self, reader: asyncio.StreamReader, budget: _Budget) -> _Response:
        status_line = (await self._readline(reader, budget)).decode("latin-1").rstrip("\r\n")
        match = re.match(r"^HTTP/1\.[01] (\d{3})(?: .*)?$", status_line)
        if match is None:
            raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "malformed HTTP response from the URL host")
        headers: dict[str, list[str]] = {}
        size = len(status_line)
        for _ in range(MAX_HEADERS + 1):
            line = (await self._readline(reader, budget)).decode("latin-1").rstrip("\r\n")
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "HTTP response headers too large")
            if not line:
                return _Response(int(match.group(1)), headers)
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or line[0] in " \t":
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "malformed HTTP response header")
            headers.setdefault(name.lower(), []).append(value.strip())
        raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "too many HTTP response headers")

    async def _read_body(
        self,
        reader: asyncio.StreamReader,
        response: _Response,
        budget: _Budget,
        *,
        max_bytes: int,
        require_image: bool,
    ) -> bytes:
        body = bytearray()

        def add(chunk: bytes) -> None:
            body.extend(chunk)
            if len(body) > max_bytes:
                raise _invalid(f"the image is larger than {max_bytes} bytes", max_bytes=max_bytes)
            # Abort a non-image as soon as enough bytes are in, instead of downloading all of it.
            if require_image and len(body) >= 12 and len(body) - len(chunk) < 12 and sniff_image_type(body) is None:
                raise _invalid("the URL did not return an image (PNG, JPEG, WEBP or GIF)")

        transfer = [v.strip().lower() for v in ",".join(response.headers.get("transfer-encoding", [])).split(",") if v]
        lengths = {v.strip() for v in response.headers.get("content-length", [])}
        if transfer:
            if transfer != ["chunked"]:
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "unsupported transfer encoding from the URL host")
            await self._read_chunked(reader, budget, add)
        elif lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "invalid Content-Length from the URL host")
            length = int(next(iter(lengths)))
            if length > max_bytes:
                raise _invalid(f"the image is larger than {max_bytes} bytes", max_bytes=max_bytes)
            while len(body) < length:
                chunk = await budget.run(reader.read(min(_READ_CHUNK, length - len(body))))
                if not chunk:
                    raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "the URL host closed the connection early")
                add(chunk)
        else:
            while True:
                chunk = await budget.run(reader.read(min(_READ_CHUNK, max_bytes + 1 - len(body))))
                if not chunk:
                    break
                add(chunk)
        data = bytes(body)
        if require_image and sniff_image_type(data) is None:
            raise _invalid("the URL did not return an image (PNG, JPEG, WEBP or GIF)")
        return data

    async def _read_chunked(self, reader: asyncio.StreamReader, budget: _Budget, add: Callable[[bytes], None]) -> None:
        while True:
            size_line = (await self._readline(reader, budget)).split(b";", 1)[0].strip()
            if not size_line or not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size_line):
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "malformed chunked body from the URL host")
            size = int(size_line, 16)
            if size == 0:
                for _ in range(MAX_HEADERS + 1):  # trailers
                    if not (await self._readline(reader, budget)).strip():
                        return
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "too many trailers in chunked body")
            remaining = size
            while remaining:
                chunk = await budget.run(reader.read(min(_READ_CHUNK, remaining)))
                if not chunk:
                    raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "the URL host closed the connection early")
                remaining -= len(chunk)
                add(chunk)
            if (await budget.run(reader.readexactly(2))) != b"\r\n":
                raise ImageGenError(ErrorCode.UPSTREAM_ERROR, "malformed chunked body from the URL host")

    async def aclose(self) -> None:
        """Nothing is pooled: every fetch opens and closes its own connection."""
        return None

    def __repr__(self) -> str:
        return f"GuardedFetcher(max_redirects={self.max_redirects}, timeout={self.timeout_seconds}s)"
