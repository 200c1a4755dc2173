"""The upstream client: its TLS context is built on a background thread, inline when that thread fails."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagegen_mcp.providers import http_clients
from imagegen_mcp.providers.http_clients import HttpClients


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Exception | None], list[str]]]:
    """Start each test with no process-wide build; `builds(first_error)` records the thread of each build."""
    monkeypatch.setattr(http_clients, "_prep", None)
    real = http_clients.tls_context

    def arrange(first_error: Exception | None) -> list[str]:
        threads: list[str] = []

        def build() -> ssl.SSLContext:
            threads.append(threading.current_thread().name)
            if first_error is not None and len(threads) == 1:
                raise first_error
            return real()

        monkeypatch.setattr(http_clients, "tls_context", build)
        return threads

    yield arrange
    if http_clients._prep is not None:
        http_clients._prep.join()


def _pool_context(clients: HttpClients) -> ssl.SSLContext:
    return clients.upstream()._transport._pool._ssl_context  # type: ignore[attr-defined,no-any-return]


@pytest.mark.anyio
async def test_the_context_is_built_once_on_a_background_thread(make_settings, builds) -> None:  # type: ignore[no-untyped-def]
    threads = builds(None)
    first, second = HttpClients(make_settings()), HttpClients(make_settings())
    context = _pool_context(first)
    assert threads == ["upstream-tls-context"]
    assert _pool_context(second) is context  # one build per process
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the system CA bundle, as httpx2 loads it itself
    client = first.upstream()
    assert client.follow_redirects is False and client.trust_env is False
    await first.aclose()
    await second.aclose()
    assert not any(t.name == "upstream-tls-context" for t in threading.enumerate())


@pytest.mark.anyio
async def test_a_failed_background_build_is_redone_inline(make_settings, builds) -> None:  # type: ignore[no-untyped-def]
    threads = builds(ssl.SSLError("no CA bundle"))
    clients = HttpClients(make_settings())
    context = _pool_context(clients)
    assert threads == ["upstream-tls-context", threading.current_thread().name]
    assert context.verify_mode == ssl.CERT_REQUIRED
    await clients.aclose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_fork_waits_for_the_build_and_the_child_inherits_the_context(tmp_path: Path) -> None:
    script = (
        "import os, time\n"
        "from imagegen_mcp.config import Settings\n"
        "from imagegen_mcp.providers import http_clients\n"
        "real = http_clients.tls_context\n"
        "def slow():\n"
        "    time.sleep(0.5)\n"
        "    return real()\n"
        "http_clients.tls_context = slow\n"
        "clients = http_clients.HttpClients(Settings(_env_file=None))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    prep = http_clients._prep\n"
        "    os._exit(0 if prep._context is not None and not prep._thread.is_alive() else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IMAGEGEN_LOCAL_DIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "0", done.stderr
