"""The upstream pool's network backend: its readability check, and a pool over it dropping closed connections."""

from __future__ import annotations

import asyncio
import socket

import httpcore2
import httpx2
import pytest

from imagegen_mcp.http_pool import PoolTransport
from imagegen_mcp.providers import upstream_network
from imagegen_mcp.providers.upstream_network import UpstreamBackend

pytestmark = pytest.mark.anyio


def test_a_socket_is_readable_once_data_or_the_close_is_waiting() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert upstream_network._readable(left) is False
        right.sendall(b"x")
        assert upstream_network._readable(left) is True
        left.recv(1)
        assert upstream_network._readable(left) is False
        right.close()
        assert upstream_network._readable(left) is True  # the b"" of the close
    assert upstream_network._readable(None) is True  # no socket: as good as closed
    assert upstream_network._readable(left) is True  # closed here: fileno() is -1


async def _serve_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One keep-alive answer, then the connection closed by the server while the client holds it idle."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


async def test_a_pool_over_it_reconnects_instead_of_reusing_a_connection_the_server_closed() -> None:
    server = await asyncio.start_server(_serve_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = httpcore2.AsyncConnectionPool(max_keepalive_connections=4, network_backend=UpstreamBackend(), retries=0)
    async with server, httpx2.AsyncClient(transport=PoolTransport(pool), trust_env=False) as client:
        for _ in range(3):
            response = await client.get(f"http://127.0.0.1:{port}/")
            assert response.status_code == 200 and response.text == "ok"
            await asyncio.sleep(0.2)  # the server has closed this connection by now
        assert len(pool.connections) == 1  # each closed one was dropped before the next request


async def test_transport_errors_arrive_as_httpx2_errors() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        pool = httpcore2.AsyncConnectionPool(network_backend=UpstreamBackend(), retries=0)
        async with httpx2.AsyncClient(transport=PoolTransport(pool), trust_env=False) as client:
            with pytest.raises(httpx2.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")
