"""The fetcher's only way onto the network: an httpx2 transport over an httpcore2 pool that connects to vetted IPs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import httpcore2

from ..errors import ErrorCode, ImageGenError
from ..errors import invalid as _invalid
from ..http_pool import PoolTransport
from .url_policy import HostList, IPAddress, Target, parse_answers, parse_ip, vet_addresses

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`await resolver(host, port)` -> the IP address strings `host` resolves to (one lookup per hop)."""

_READ_BUFFER = 64 * 1024  # asyncio StreamReader limit

# httpcore2 hands every https connection a context for start_tls; ours never uses it (the connector did TLS),
# so one bare context spares the certificate-store load httpcore2's default would cost per connection.
_UNUSED_TLS_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Connector(Protocol):
    """Opens a byte stream to an already-vetted IP address; never resolves names itself.

    `tls_hostname` is the URL's host for https (SNI and certificate check against it), None for plain http.
    """

    def __call__(
        self, ip: str, port: int, *, tls_hostname: str | None
    ) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]: ...


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
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def __call__(
        self, ip: str, port: int, *, tls_hostname: str | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if tls_hostname is None:
            return await asyncio.open_connection(ip, port, limit=_READ_BUFFER)
        return await asyncio.open_connection(
            ip, port, ssl=self._context(), server_hostname=tls_hostname, limit=_READ_BUFFER
        )


class _Stream(httpcore2.AsyncNetworkStream):
    """An asyncio stream pair the connector opened (TLS already done for https), as httpcore2 reads and writes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls_hostname: str | None) -> None:
        self._reader = reader
        self._writer = writer
        self._tls_hostname = tls_hostname

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 (httpcore2 API)
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except TimeoutError:
            raise httpcore2.ReadTimeout("timed out reading from the URL host") from None
        except OSError as exc:
            raise httpcore2.ReadError(type(exc).__name__) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 (httpcore2 API)
        try:
            self._writer.write(buffer)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except TimeoutError:
            raise httpcore2.WriteTimeout("timed out writing to the URL host") from None
        except OSError as exc:
            raise httpcore2.WriteError(type(exc).__name__) from None

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2 API)
    ) -> httpcore2.AsyncNetworkStream:
        # The connector already completed TLS (SNI and certificate) for the URL host; only the name is confirmed.
        if self._tls_hostname is None or server_hostname != self._tls_hostname:
            raise httpcore2.ConnectError("TLS was not set up for this host")
        return self

    def get_extra_info(self, info: str) -> Any:
        names = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername", "socket": "socket"}
        return self._writer.get_extra_info(names[info]) if info in names else None


class VettedBackend(httpcore2.AsyncNetworkBackend):
    """Serves one hop: resolves its host once, vets every answer, connects only to a vetted address."""

    def __init__(self, target: Target, *, resolver: Resolver, connector: Connector, trusted: HostList) -> None:
        self._target = target
        self._resolver = resolver
        self._connector = connector
        self._trusted = trusted

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2 API)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        if ((parse_ip(host) or host), port) != ((self._target.ip or self._target.host), self._target.port):
            raise httpcore2.ConnectError("this pool only connects to its hop's host")
        addresses = await self._resolve(timeout)
        vet_addresses(self._target, addresses, self._trusted)
        return await self._connect(addresses, timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _resolve(self, seconds: float | None) -> list[IPAddress]:
        target = self._target
        if target.ip is not None:
            return [target.ip]
        try:
            answers = await asyncio.wait_for(self._resolver(target.host, target.port), seconds)
        except TimeoutError:  # a subclass of OSError: keep it a timeout
            raise httpcore2.ConnectTimeout("timed out resolving the URL host") from None
        except (OSError, UnicodeError):
            raise _invalid("could not resolve the URL host", host=target.host) from None
        return parse_answers(target.host, answers or ())

    async def _connect(self, addresses: list[IPAddress], seconds: float | None) -> httpcore2.AsyncNetworkStream:
        target = self._target
        tls_hostname = target.host if target.scheme == "https" else None
        last: OSError | None = None
        for addr in addresses:
            try:
                reader, writer = await asyncio.wait_for(
                    self._connector(str(addr), target.port, tls_hostname=tls_hostname), seconds
                )
            except TimeoutError:
                raise httpcore2.ConnectTimeout("timed out connecting to the URL host") from None
            except ssl.SSLCertVerificationError:
                raise _invalid("TLS certificate verification failed for the URL host", host=target.host) from None
            except OSError as exc:
                last = exc
                continue
            return _Stream(reader, writer, tls_hostname)
        raise ImageGenError(
            ErrorCode.UPSTREAM_ERROR,
            f"could not connect to the URL host ({type(last).__name__})",
            details={"host": target.host},
        )


class VettedTransport(PoolTransport):
    """httpx2 over an httpcore2 pool whose network backend is a VettedBackend (HTTP/1.1, no retries).

    Transport errors arrive as httpx2's; the fetcher turns them into error codes.
    """

    def __init__(self, backend: VettedBackend) -> None:
        super().__init__(
            httpcore2.AsyncConnectionPool(
                ssl_context=_UNUSED_TLS_CONTEXT, max_connections=1, network_backend=backend, retries=0
            )
        )
