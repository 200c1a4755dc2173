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


def _import_main(tmp_path: Path, script: str) -> str:
    """Run `script` (which imports main) in a fresh interpreter with a default endpoint's settings; its last line."""
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAGEGEN_PROVIDERS": "openai",
        "OPENAI_API_KEY": "sk-test-not-a-key",
        "IMAGEGEN_DEFAULT_MODEL": "openai/gpt-image-1",
        "IMAGEGEN_LOCAL_DIR": str(tmp_path / "outputs"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=FUNCTION_DIR, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_import_main_leaves_unused_modules_unloaded(tmp_path: Path) -> None:
    loaded = set(json.loads(_import_main(tmp_path, "import json, sys, main; print(json.dumps(sorted(sys.modules)))")))
    assert "imagegen_mcp.access.anonymous" in loaded  # the check sees the modules main really loads
    assert sorted(m for m in NOT_AT_STARTUP if m in loaded) == []


def test_import_main_runs_no_collection_and_freezes_what_it_built(tmp_path: Path) -> None:
    script = (
        "import gc, json\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: runs.append(info['generation']) if phase == 'start' else None)\n"
        "import main\n"
        "print(json.dumps([runs.count(2), gc.isenabled(), gc.get_freeze_count()]))\n"
    )
    full_collections, enabled, frozen = json.loads(_import_main(tmp_path, script))
    assert full_collections == 0
    assert enabled is True  # collection works again for what requests allocate
    assert frozen > 50_000  # the app's long-lived objects are out of the collector's way
