"""The guarded (SSRF-safe) URL fetcher: vetted connections and capped image downloads under the URL policy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin

from ..errors import ErrorCode, ImageGenError
from ..errors import invalid as _invalid
from .imaging import FORMAT_MIME, sniff_format
from .url_policy import HostList, IPAddress, Target, parse_answers, validate_url, vet_addresses

if TYPE_CHECKING:
    import ssl

    from ..config import Settings

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`await resolver(host, port)` -> the IP address strings `host` resolves to (one lookup per hop)."""

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
_READ_CHUNK = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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
        return parse_answers(target.host, answers or ())

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
        vet_addresses(target, addresses, self._trusted)
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
