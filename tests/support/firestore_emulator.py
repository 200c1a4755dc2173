"""One Firestore emulator per test run (shared by pytest-xdist workers through a file lock and a state file)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
from filelock import FileLock

from .servers import free_port

STARTUP_TIMEOUT_SECONDS = 120.0


def _ready(host: str) -> bool:
    try:
        return httpx2.get(f"http://{host}/", timeout=2.0).text.strip() == "Ok"
    except httpx2.HTTPError:
        return False


def _start(workdir: Path) -> dict[str, object]:
    port = free_port()
    host = f"127.0.0.1:{port}"
    with open(workdir / "firestore-emulator.log", "wb") as log:
        process = subprocess.Popen(
            ["gcloud", "emulators", "firestore", "start", f"--host-port={host}", "--quiet"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gcloud forks a java child we must stop too
            env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not _ready(host):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError(f"Firestore emulator did not start:\n{(workdir / 'firestore-emulator.log').read_text()}")
        time.sleep(0.5)
    return {"host": host, "pgid": process.pid, "users": 0}


def _stop(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def shared_emulator(root: Path) -> Iterator[str]:
    """Yield the emulator's host:port; the first user starts it, the last one stops it."""
    if shutil.which("gcloud") is None:
        import pytest

        pytest.skip("the gcloud SDK (Firestore emulator) is not installed on this machine")
    root.mkdir(parents=True, exist_ok=True)
    state_file = root / "firestore-emulator.json"
    lock = FileLock(str(root / "firestore-emulator.lock"))
    with lock:
        state = json.loads(state_file.read_text()) if state_file.exists() else None
        if state is None or not _ready(str(state["host"])):
            state = _start(root)
        state["users"] = int(state["users"]) + 1
        state_file.write_text(json.dumps(state))
    try:
        yield str(state["host"])
    finally:
        with lock:
            current = json.loads(state_file.read_text())
            current["users"] = int(current["users"]) - 1
            if current["users"] <= 0:
                _stop(int(current["pgid"]))
                state_file.unlink()
            else:
                state_file.write_text(json.dumps(current))
