"""`python3 dev.py serve`: a signal to dev.py stops the server it started (no orphan holding the port)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import psutil
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)


def _venv_is_current() -> bool:
    """The stamp dev.py itself compares (dev.install_digest), so dev.py will not reinstall before serving."""
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    stamp = VENV / ".imagegen-install-stamp"
    return stamp.is_file() and stamp.read_text() == dev.install_digest()


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_dev_py_stops_its_server(tmp_path: Path, signo: int) -> None:
    if not _venv_is_current():
        pytest.skip("dev.py would reinstall this virtual environment first (pyproject.toml changed since)")
    port = free_port()
    env = {**os.environ, "IMAGEGEN_DEV_VENV": str(VENV), "IMAGEGEN_LOCAL_DIR": str(tmp_path / "out")}
    dev = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the test's own process group must not reach it
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert dev.poll() is None, "dev.py serve exited early"
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)
        children = psutil.Process(dev.pid).children(recursive=True)
        assert children, "dev.py serve runs the server as a child"
        dev.send_signal(signo)
        dev.wait(timeout=30)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"still running after dev.py got {signal.Signals(signo).name}: {alive}"
        with pytest.raises(httpx2.HTTPError):
            httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        for process in [*children, psutil.Process(dev.pid)] if dev.poll() is None else children:
            if process.is_running():
                process.kill()
