"""The package type-checks under mypy --strict (configuration in pyproject.toml), so its py.typed is honest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_package_passes_mypy_strict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_ships_py_typed() -> None:
    assert (ROOT / "function" / "imagegen_mcp" / "py.typed").is_file()
