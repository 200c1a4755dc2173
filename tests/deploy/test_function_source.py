"""The Cloud Run functions shape: function/ alone plus function/requirements.txt, run as the buildpack runs it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from tests.infra.tooling import CACHE_DIR, locked, pip_env
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "function" / "requirements.txt"
SITE = ROOT / "tests" / "support" / "loopback_site"


def _function_venv() -> Path:
    """A virtual environment holding function/requirements.txt and nothing else (cached per lock digest)."""
    env_dir = CACHE_DIR / "function-venv"
    stamp = env_dir / ".lock.sha256"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    with locked("function-venv"):
        if not (stamp.exists() and stamp.read_text() == digest):
            shutil.rmtree(env_dir, ignore_errors=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
            subprocess.run(
                [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--require-hashes", "-r", str(LOCK)],
                check=True,
                env=pip_env(),  # pip must reach the registry (the loopback guard would refuse it)
            )
            stamp.write_text(digest)
    return env_dir


@pytest.fixture(scope="module")
def function_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env_dir = _function_venv()
    source = tmp_path_factory.mktemp("source") / "function"
    shutil.copytree(ROOT / "function", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    port = free_port()
    env = {
        "PATH": f"{env_dir / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path_factory.mktemp("home")),
        "IMAGEGEN_LOCAL_DIR": str(tmp_path_factory.mktemp("outputs")),
        "PYTHONPATH": str(SITE),  # the tests' loopback guard only; the app itself comes from source/
        "PYTHONUNBUFFERED": "1",
    }
    log_path = source.parent / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(env_dir / "bin" / "functions-framework"),
                *("--source", "main.py", "--target", "mcp", "--host", "127.0.0.1", "--port", str(port)),
            ],
            cwd=source,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_function_venv_has_only_the_lock() -> None:
    """Nothing but the runtime lock: no imagegen-mcp distribution, no test tools."""
    env_dir = _function_venv()
    listed = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "imagegen-mcp" not in listed and "pytest" not in listed and "ruff" not in listed
    assert "functions-framework" in listed


async def test_function_target_serves_mcp_from_source(function_server: str) -> None:
    async with Client(f"{function_server}/mcp") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"generate_image", "edit_image", "list_models"} <= tools
        result = await client.call_tool("generate_image", {"prompt": "a buildpack", "model": "local/placeholder"})
    assert not result.is_error, result.content
    item = result.structured_content["images"][0]
    fetched = httpx2.get(item["url"], timeout=30)
    assert fetched.status_code == 200 and len(fetched.content) == item["size_bytes"]


def test_python_is_the_one_the_buildpack_targets() -> None:
    """The lock is resolved for the Python the project declares (3.11) — the runtime the deploy asks for."""
    assert sys.version_info[:2] >= (3, 11)
