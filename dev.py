#!/usr/bin/env python3
"""One-command set-up: `python3 dev.py serve` runs the endpoint locally, `python3 dev.py test` runs every check.

Needs only Python 3.11+ with pip and venv. Creates `.venv/` next to this file, installs the project
(editable) with its test extras there, then runs the command inside it. Re-runs reuse the venv and
only reinstall when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("IMAGEGEN_DEV_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".imagegen-install-stamp"
# The locks (hashed pins generated from pyproject.toml by `dev.py lock`): the runtime one is also what the
# Cloud Run functions buildpack and the Docker image install; the dev one adds the test tools.
RUNTIME_LOCK = ROOT / "function" / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
LOCK_TOOL = "pip-tools==7.6.2"
UI_SRC = ROOT / "function" / "imagegen_mcp" / "ui" / "src"


_FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP")
# Tests in parallel, one worker per core; a module's tests stay on one worker (its module fixtures start once).
_XDIST = ("-n", "auto", "--dist", "loadscope")
_SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel sent (Ctrl-C on the terminal), not kill()


def _run(*cmd: str | os.PathLike[str], env: dict[str, str] | None = None) -> int:
    """Run `cmd` and wait; SIGTERM/SIGINT/SIGHUP sent to dev.py are passed on, so no child outlives it."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    argv = [str(c) for c in cmd]
    if not hasattr(signal, "sigtimedwait"):  # Windows, macOS: no siginfo; the console signals the child itself
        return subprocess.call(argv, cwd=ROOT, env=env)  # noqa: S603 - our own fixed commands
    signals = {getattr(signal, name) for name in _FORWARDED}
    # Blocked here and waited for below (with the sender known); the child starts with them unblocked.
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        child = subprocess.Popen(  # noqa: S603 - our own fixed commands
            argv, cwd=ROOT, env=env, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
        )
        stopped = 0
        while child.poll() is None:
            info = signal.sigtimedwait(signals, 0.2)
            if info is None:
                continue
            stopped = info.si_signo
            # Ctrl-C on the terminal already reached the child (same process group): passing it on would make
            # it a second Ctrl-C (uvicorn and pytest then stop without cleaning up).
            if not (info.si_signo == signal.SIGINT and info.si_code == _SI_KERNEL):
                child.send_signal(info.si_signo)
        while (late := signal.sigtimedwait(signals, 0)) is not None:  # came as the child ended: still a stop
            stopped = stopped or late.si_signo
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    if stopped:  # stop here, not go on to the next command (`test` runs lint, then pytest)
        sys.exit(child.returncode if child.returncode > 0 else 128 + stopped)
    return child.returncode


def install_digest() -> str:
    """What the venv was installed from (pyproject.toml and the dev lock): a change means reinstall."""
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + DEV_LOCK.read_bytes()).hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"imagegen-mcp needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    want = install_digest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing the locked dependencies (requirements-dev.txt) into the virtual environment", flush=True)
    if (
        _run(*pip, "--upgrade", "pip") != 0
        or _run(*pip, "--require-hashes", "-r", DEV_LOCK) != 0
        or _run(*pip, "--no-deps", "-e", ROOT) != 0
    ):
        sys.exit("installing imagegen-mcp into the virtual environment failed (see pip's output above)")
    STAMP.write_text(want)


def lock_inputs_digest() -> str:
    """Digest of what the locks are generated from: pyproject.toml's dependency lists."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    inputs = {"dependencies": project["dependencies"], "test": project["optional-dependencies"]["test"]}
    import json

    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock() -> int:
    """Regenerate both locks from pyproject.toml with pip-tools (hashes for every file of every pin)."""
    tool_venv = ROOT / ".cache" / "lock-venv"
    tool_py = tool_venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    if not tool_py.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(tool_venv)
    if _run(tool_py, "-m", "pip", "install", "-q", LOCK_TOOL) != 0:
        return 1
    digest = lock_inputs_digest()
    for out, extra in ((RUNTIME_LOCK, None), (DEV_LOCK, "test")):
        cmd = [tool_py, "-m", "piptools", "compile", "-q", "--generate-hashes", "--strip-extras", "--allow-unsafe"]
        cmd += ["--no-emit-index-url", "--no-emit-find-links", "--no-header", "--upgrade", "-o", out]
        if extra:
            cmd += ["--extra", extra]
        if _run(*cmd, ROOT / "pyproject.toml") != 0:
            return 1
        body = out.read_text(encoding="utf-8")
        out.write_text(
            f"# Generated by `python3 dev.py lock` from pyproject.toml; do not edit.\n"
            f"# lock-inputs-sha256: {digest}\n" + body,
            encoding="utf-8",
        )
    return 0


def npm_ci(package_dir: Path, cache_name: str) -> Path:
    """`npm ci` of package_dir's package.json + package-lock.json into .cache/<cache_name>; returns node_modules.

    Reinstalls only when the lockfile changed (a stamp holds its hash); a file lock keeps parallel runs apart.
    """
    import fcntl
    import shutil

    target = ROOT / ".cache" / cache_name
    stamp = target / ".lock.sha256"
    lockfile = package_dir / "package-lock.json"
    digest = hashlib.sha256((package_dir / "package.json").read_bytes() + lockfile.read_bytes()).hexdigest()
    target.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".cache" / f"{cache_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text() == digest and (target / "node_modules").is_dir()):
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(package_dir / name, target / name)
            npm = shutil.which("npm") or "npm"
            if _run(npm, "ci", "--no-audit", "--no-fund", "--prefix", target) != 0:
                raise RuntimeError(f"npm ci failed for {package_dir}")
            stamp.write_text(digest)
    return target / "node_modules"


def build_ui() -> int:
    """Rebuild function/imagegen_mcp/ui/gallery.html from ui/src with its locked npm packages."""
    modules = npm_ci(UI_SRC, "ui-node")
    return _run("node", UI_SRC / "build.mjs", modules, UI_SRC.parent / "gallery.html")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "lock":
        return lock()
    if command == "ui":
        return build_ui()
    if command not in {"serve", "test", "lint", "bench", "shell"}:
        print(__doc__)
        print(
            "usage: python3 dev.py serve [imagegen-mcp serve options] | test [pytest args] | lint | bench [args] | lock"
            " | ui (rebuild the gallery app)"
        )
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
    parallel = [] if any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in rest) else _XDIST
    tests = _run(PY, "-m", "pytest", *parallel, *rest, env=env)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
