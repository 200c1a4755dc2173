"""The test sandbox itself: nothing in a test process (or a server it starts) reaches past loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest

from tests.support.loopback_guard import SITE, NonLoopbackBlocked


def _own_non_loopback_ipv4() -> str | None:
    """An address of this machine's own interfaces that is not loopback: reachable without the guard, offline too."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return None


def test_names_off_loopback_are_refused_by_the_guard() -> None:
    with pytest.raises(socket.gaierror, match="test sandbox"):
        socket.getaddrinfo("api.openai.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_a_reachable_non_loopback_address_is_refused() -> None:
    """A listener on all interfaces, dialled at this machine's own LAN address: only the guard stops the connect."""
    own = _own_non_loopback_ipv4()
    if own is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with socket.create_server(("0.0.0.0", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NonLoopbackBlocked):
            sock.settimeout(5)
            sock.connect((own, port))


def test_a_datagram_socket_off_loopback_is_refused() -> None:
    """Needs no interface but lo: without the guard, connect() succeeds (a route) or fails with a plain OSError."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(NonLoopbackBlocked):
        sock.connect(("10.255.255.53", 53))


def test_server_subprocesses_get_the_guard() -> None:
    """The environment tests run with carries the guard's sitecustomize to any Python child."""
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(SITE)
    code = (
        "import socket\n"
        "try:\n    socket.getaddrinfo('metadata.google.internal', 80)\n"
        "except OSError as exc:\n    print(type(exc).__name__, exc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.startswith("gaierror") and "test sandbox" in done.stdout, (done.stdout, done.stderr)


def test_the_developers_settings_and_keys_are_not_visible() -> None:
    leaked = [n for n in os.environ if n.startswith(("IMAGEGEN_", "OPENAI_", "OPENROUTER_", "REPLICATE_", "GEMINI_"))]
    assert leaked in ([], ["IMAGEGEN_DEV_VENV"])
    assert "GOOGLE_API_KEY" not in os.environ and "GOOGLE_CLOUD_PROJECT" not in os.environ
