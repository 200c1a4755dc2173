"""Starts the real server (uvicorn or functions-framework entry) as a subprocess on a loopback port."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from tests.support.loopback_guard import guard_subprocesses

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = ("uvicorn", "functions-framework")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerHandle:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _command(entry: str, port: int) -> list[str]:
    bindir = Path(sys.executable).parent
    if entry == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "main:app",
            "--app-dir",
            str(ROOT / "function"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "20",
        ]
    if entry == "functions-framework":
        return [
            str(bindir / "functions-framework"),
            "--source",
            str(ROOT / "function" / "main.py"),
            "--target",
            "mcp",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    if entry == "cli":
        return [str(bindir / "imagegen-mcp"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    raise ValueError(entry)


_SCRATCH: list[Path] = []


def _remove_scratch() -> None:
    for path in _SCRATCH:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_remove_scratch)


def scratch_dir(prefix: str) -> Path:
    """A new temporary folder, removed when this process exits (servers' logs, outputs and state files).

    Not at the end of the block that used it: a test may read a stopped server's log. Without this, every run of
    the suite or the bench left gigabytes of outputs in /tmp.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _SCRATCH.append(path)
    return path


@contextlib.contextmanager
def start_server(
    env: dict[str, str] | None = None,
    entry: str = "uvicorn",
    *,
    startup_timeout: float = 60.0,
    port: int | None = None,
) -> Iterator[ServerHandle]:
    """Run the endpoint with `env` (IMAGEGEN_* settings) until the block ends; logs go to a temp file."""
    port = port or free_port()
    workdir = scratch_dir("imagegen-srv-")
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGEGEN_", "GOOGLE_", "OPENAI", "OPENROUTER", "REPLICATE"))
    }
    full_env.update({"IMAGEGEN_LOCAL_DIR": str(workdir / "outputs"), "PYTHONUNBUFFERED": "1", "WORKERS": "1"})
    guard_subprocesses(full_env)  # the loopback guard (tests/support/loopback_guard.py) via sitecustomize
    full_env.update(env or {})
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            _command(entry, port), cwd=str(workdir), env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    handle = ServerHandle(f"http://127.0.0.1:{port}", process, log_path, full_env)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{handle.logs()}")
            try:
                if httpx2.get(f"{handle.base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become healthy:\n{handle.logs()}")
            time.sleep(0.1)
        yield handle
    finally:
        stop_server(handle)


def stop_server(handle: ServerHandle, timeout: float = 20.0) -> int | None:
    process = handle.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
