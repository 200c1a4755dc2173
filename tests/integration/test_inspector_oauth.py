"""The MCP Inspector CLI (npm) against `google-oauth,bearer` and the fake Google: its own OAuth flow, driven headless
(it prints the authorization URL; the test plays the browser), and a header carrying a token from the fake."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.fakes.google_oauth_server import FakeGoogleOAuth
from tests.integration.test_inspector_cli import INSPECTOR
from tests.support.servers import ServerHandle, free_port, start_server

CLIENT_ID = "123456789-inspector.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-inspector-secret"
PROMPT = "Please navigate to: "
pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js (npx) for the MCP Inspector CLI"),
]


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogleOAuth]:
    fake = FakeGoogleOAuth(user="ana@corp.example")
    with fake.running():
        yield fake


@pytest.fixture(scope="module")
def endpoint(google: FakeGoogleOAuth) -> Iterator[ServerHandle]:
    env = {
        "IMAGEGEN_AUTH": "google-oauth,bearer",
        **google.endpoint_env(CLIENT_ID),
        "IMAGEGEN_IAM_ALLOWED_DOMAINS": "corp.example",
        "IMAGEGEN_API_KEYS": json.dumps({"keys": []}),
        "IMAGEGEN_DEFAULT_MODEL": "local/placeholder",
    }
    with start_server(env) as handle:
        yield handle


def logged(endpoint: ServerHandle, text: str) -> bool:
    """Whether the server's log names `text` (its line for a call is written as the call ends: give it a moment)."""
    for _ in range(100):
        if text in endpoint.logs():
            return True
        time.sleep(0.1)
    return False


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        {
            "HOME": str(home),  # its OAuth state and catalog live under ~/.mcp-inspector: a fresh one per test
            "MCP_STORAGE_DIR": str(home / "storage"),
            "MCP_AUTO_OPEN_ENABLED": "false",  # print the URL, open no browser
            "NO_COLOR": "1",
            "npm_config_cache": str(Path.home() / ".npm"),  # the Inspector npx already fetched
        }
    )
    return env


def test_inspector_cli_runs_the_oauth_flow_headless(endpoint: ServerHandle, google: FakeGoogleOAuth) -> None:
    callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
    google.register(CLIENT_ID, [callback], CLIENT_SECRET)
    home = Path(tempfile.mkdtemp(prefix="inspector-home-"))
    command = [
        "npx", "-y", INSPECTOR, "--cli", endpoint.mcp_url, "--transport", "http",
        "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--callback-url", callback,
        "--method", "tools/call", "--tool-name", "generate_image", "--tool-arg", "prompt=inspector oauth",
    ]  # fmt: skip
    # It signs in interactively only with a terminal: a pseudo-terminal on stdin (nobody types into it).
    terminal, terminal_end = pty.openpty()
    process = subprocess.Popen(
        command,
        stdin=terminal_end,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home),
        cwd=home,
    )
    os.close(terminal_end)
    stderr: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line)
            if PROMPT in line:
                authorize_url = line.split(PROMPT, 1)[1].strip()
                break
        else:
            pytest.fail("the Inspector never asked for a sign-in:\n" + "".join(stderr)[-3000:])
        # The browser: Google's consent screen (the fake approves ana@corp.example) redirects to the listener.
        consent = httpx2.get(authorize_url, follow_redirects=False, timeout=30)
        assert consent.status_code == 302, consent.text
        assert consent.headers["location"].startswith(callback + "?")
        httpx2.get(consent.headers["location"], timeout=60)
        stdout, rest = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(terminal)
    assert process.returncode == 0, "".join(stderr) + rest
    result = json.loads(stdout)
    assert not result.get("isError"), result
    assert any(block.get("type") == "resource_link" for block in result["content"])
    assert logged(endpoint, "ana@corp.example")
    authorize = [params for method, path, params in google.log if path == "/o/oauth2/v2/auth"][-1]
    assert authorize["client_id"] == CLIENT_ID and authorize["code_challenge_method"] == "S256"


def test_inspector_cli_with_a_header_token(endpoint: ServerHandle, google: FakeGoogleOAuth) -> None:
    token = google.mint_access_token(CLIENT_ID, "ben@corp.example")
    home = Path(tempfile.mkdtemp(prefix="inspector-home-"))
    completed = subprocess.run(
        [
            "npx",
            "-y",
            INSPECTOR,
            "--cli",
            endpoint.mcp_url,
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {token}",
            "--method",
            "tools/call",
            "--tool-name",
            "generate_image",
            "--tool-arg",
            "prompt=inspector header",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=_env(home),
        cwd=home,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert not result.get("isError") and result.get("content"), completed.stdout
    assert logged(endpoint, "ben@corp.example") and token not in endpoint.logs()
