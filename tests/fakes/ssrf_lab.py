"""SSRF test lab on loopback: a scripted HTTP/1.1 origin, a fake DNS resolver and a connector that records every IP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from imagegen_mcp.images.vetted_network import TcpConnector

# Addresses the fake DNS may hand out for "good" hosts; the connector sends them all to the loopback origin.
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
PUBLIC_IPS = frozenset({PUBLIC_V4, PUBLIC_V6})

# Smallest valid-looking bodies per format (magic bytes + padding); the fetcher judges bytes, not pixels.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64
WEBP = b"RIFF\x40\x00\x00\x00WEBPVP8 " + b"\x00" * 64


@dataclass
class SeenRequest:
    """One request the origin received."""

    method: str
    target: str
    headers: dict[str, str]
    sni: str | None


Responder = Callable[[asyncio.StreamWriter], Awaitable[None]]


def raw(data: bytes) -> Responder:
    async def send(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return send


def respond(status: int = 200, body: bytes = PNG, headers: dict[str, str] | None = None) -> Responder:
    head = {"Content-Type": "image/png", "Content-Length": str(len(body)), **(headers or {})}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items() if v is not None)
    return raw(f"HTTP/1.1 {status} X\r\n{lines}\r\n".encode("latin-1") + body)


def redirect(location: str, status: int = 302) -> Responder:
    return respond(status, b"", {"Location": location, "Content-Type": "text/plain"})


def chunked(parts: Sequence[bytes], content_type: str = "image/png") -> Responder:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return raw(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body)


def endless(head: bytes, *, prefix: bytes = PNG, piece: bytes = b"\x00" * 65536, delay: float = 0.0) -> Responder:
    """Sends `head`, `prefix`, then `piece` forever (every `delay` seconds) until the client goes away."""

    async def send(writer: asyncio.StreamWriter) -> None:
        writer.write(head + prefix)
        with contextlib.suppress(ConnectionError, OSError):
            while not writer.is_closing():
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(delay)

    return send


def silent() -> Responder:
    """Accepts the request and never answers."""

    async def send(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    return send


class Origin:
    """A loopback HTTP/1.1 server (optionally TLS) that answers each path with a scripted responder."""

    def __init__(
        self,
        routes: dict[str, Responder],
        ssl_context: ssl.SSLContext | None = None,
        requests: list[SeenRequest] | None = None,
    ) -> None:
        self.routes = routes
        self.requests: list[SeenRequest] = [] if requests is None else requests
        self.port = 0
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sni: list[str | None] = []
        if ssl_context is not None:
            ssl_context.sni_callback = self._on_sni

    def _on_sni(self, sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self._sni.append(name)

    async def __aenter__(self) -> Origin:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            line = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            while (header := (await reader.readline()).decode("latin-1").strip()) != "":
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            method, target = line[0], line[1]
            self.requests.append(SeenRequest(method, target, headers, self._sni[-1] if self._sni else None))
            responder = self.routes.get(
                target.split("?")[0], respond(404, b"no such path", {"Content-Type": "text/plain"})
            )
            await responder(writer)
        except (ConnectionError, OSError, IndexError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


class FakeResolver:
    """host -> answers; a list of lists gives one answer per lookup (the last repeats): DNS rebinding."""

    def __init__(self, table: dict[str, Sequence[str] | Sequence[Sequence[str]]]) -> None:
        self.table = table
        self.lookups: list[tuple[str, int]] = []
        self._count: dict[str, int] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        answers = self.table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answers and not isinstance(answers[0], str):
            n = self._count.get(host, 0)
            self._count[host] = n + 1
            return list(answers[min(n, len(answers) - 1)])
        return list(answers)  # type: ignore[arg-type]


@dataclass
class RecordingConnector:
    """Records the (ip, port, tls_hostname) it is asked for, then ALWAYS connects to the loopback origin.

    Even a broken guard cannot send a packet off this machine: the requested IP is only written down.
    """

    origin_port: Callable[[], int]
    ssl_context: ssl.SSLContext | None = None
    tls_origin_port: Callable[[], int] | None = None  # where https goes (default: origin_port)
    calls: list[tuple[str, int, str | None]] = field(default_factory=list)
    hang: bool = False

    async def __call__(
        self, ip: str, port: int, *, tls_hostname: str | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.calls.append((ip, port, tls_hostname))
        if self.hang:
            await asyncio.sleep(3600)
        to_port = self.origin_port
        if tls_hostname is not None and self.tls_origin_port is not None:
            to_port = self.tls_origin_port
        return await TcpConnector(self.ssl_context)("127.0.0.1", to_port(), tls_hostname=tls_hostname)

    def ips(self) -> list[str]:
        return [str(ipaddress.ip_address(ip)) for ip, _, _ in self.calls]


@dataclass(frozen=True)
class TlsPair:
    server: ssl.SSLContext
    client: ssl.SSLContext


def make_tls(hostnames: Iterable[str]) -> TlsPair:
    """A throwaway CA and a leaf certificate for `hostnames`: server and client SSL contexts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssrf-lab test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(hostnames)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    import tempfile
    from pathlib import Path

    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return TlsPair(server=server, client=client)
