"""The test sandbox itself: nothing in a test process (or a server it starts) reaches past loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.loopback_guard import NonLoopbackBlocked

SITE = Path(__file__).resolve().parents[1] / "support" / "loopback_site"


def test_names_and_addresses_off_loopback_are_refused_without_a_packet() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("api.openai.com", 443)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(NonLoopbackBlocked):
        sock.connect(("10.255.255.53", 53))
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_server_subprocesses_get_the_guard() -> None:
    env = {**os.environ, "PYTHONPATH": str(SITE)}
    code = (
        "import socket\n"
        "try:\n    socket.getaddrinfo('metadata.google.internal', 80)\n"
        "except OSError:\n    print('blocked')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "blocked", done.stderr
