#!/usr/bin/env python3
"""One-command set-up: `python3 dev.py serve` runs the endpoint locally, `python3 dev.py test` runs every check.

Needs only Python 3.11+ with pip and venv. Creates `.venv/` next to this file, installs the project
(editable) with its test extras there, then runs the command inside it. Re-runs reuse the venv and
only reinstall when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("IMAGEGEN_DEV_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".imagegen-install-stamp"


def _run(*cmd: str | os.PathLike[str], env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)  # noqa: S603 - our own fixed commands


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"imagegen-mcp needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if _run(*pip, "--upgrade", "pip") != 0 or _run(*pip, "-e", f"{ROOT}[test]") != 0:
        sys.exit("installing imagegen-mcp into the virtual environment failed (see pip's output above)")
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in {"serve", "test", "lint", "bench", "shell"}:
        print(__doc__)
        print("usage: python3 dev.py serve [imagegen-mcp serve options] | test [pytest args] | lint | bench [args]")
        return 2
    ensure_venv()
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    rest = argv[1:]
    if command == "serve":
        return _run(BIN / "imagegen-mcp", "serve", *rest, env=env)
    if command == "lint":
        return _run(PY, "-m", "ruff", "check", ".", env=env) or _run(
            PY, "-m", "ruff", "format", "--check", ".", env=env
        )
    if command == "bench":
        return _run(PY, "-m", "bench", *rest, env=env)
    if command == "shell":
        return _run(os.environ.get("SHELL", "/bin/sh"), env=env)
    lint = _run(PY, "-m", "ruff", "check", ".", env=env)
    tests = _run(PY, "-m", "pytest", *rest, env=env)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
