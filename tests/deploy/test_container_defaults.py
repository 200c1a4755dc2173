"""The container's embedded defaults start without a home directory (the image runs as uid 10001, HOME=/nonexistent)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from tests.support.servers import start_server

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def dockerfile_env() -> dict[str, str]:
    """The `ENV` assignments of the Dockerfile (one ENV instruction with `\\` continuations)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line[4:]))
    return env


def test_dockerfile_sets_a_writable_local_dir() -> None:
    assert dockerfile_env().get("IMAGEGEN_LOCAL_DIR", "").startswith("/tmp/")


def test_dockerfile_compiles_the_app_dir_it_serves_from() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "--app-dir function" in text
    copied = text.index("COPY function/ ./function/")
    compiled = text.find("python -m compileall -q function", copied)
    assert compiled > copied, "function/ must be byte-compiled in the image, after it is copied in"


async def test_starts_and_serves_with_an_unusable_home(tmp_path: Path) -> None:
    # A HOME below a regular file cannot be created, not even by root (ENOTDIR): like /nonexistent for uid 10001.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {k: v for k, v in dockerfile_env().items() if k != "PORT"}
    env["HOME"] = str(blocker / "home")
    # Without the Dockerfile's setting the app falls back to its default under HOME (~/.cache/imagegen-mcp/...);
    # start_server would otherwise put in a test folder of its own and hide that.
    env.setdefault("IMAGEGEN_LOCAL_DIR", str(blocker / "home" / ".cache" / "imagegen-mcp" / "outputs"))
    with start_server(env, entry="uvicorn") as server:
        async with Client(server.mcp_url) as client:
            result = await client.call_tool("generate_image", {"prompt": "no home", "model": "local/placeholder"})
        assert not result.is_error, result.content
        assert httpx2.get(result.structured_content["images"][0]["url"], timeout=30).status_code == 200
