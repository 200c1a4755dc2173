"""What importing the entry module loads: nothing a default endpoint does not use on its first calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "function"

# Unused by an endpoint with IMAGEGEN_AUTH=none that returns images in the format asked for.
NOT_AT_STARTUP = (
    "PIL",
    "imagegen_mcp.access.bearer",
    "imagegen_mcp.access.combined",
    "imagegen_mcp.access.google_oauth",
    "imagegen_mcp.access.google_id_tokens",
    "imagegen_mcp.access.iam",
)


def test_import_main_leaves_unused_modules_unloaded(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAGEGEN_PROVIDERS": "openai",
        "OPENAI_API_KEY": "sk-test-not-a-key",
        "IMAGEGEN_DEFAULT_MODEL": "openai/gpt-image-1",
        "IMAGEGEN_LOCAL_DIR": str(tmp_path / "outputs"),
    }
    script = "import json, sys, main; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=FUNCTION_DIR, env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "imagegen_mcp.access.anonymous" in loaded  # the check sees the modules main really loads
    assert sorted(m for m in NOT_AT_STARTUP if m in loaded) == []
