"""The dependency locks: generated from pyproject.toml, hashed, agreeing with each other, and what installs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "function" / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
PIN_RE = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", re.M)


def _dev_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN_RE.findall(lock.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=["runtime", "dev"])
def test_lock_is_fresh_for_pyproject(lock: Path) -> None:
    recorded = re.search(r"^# lock-inputs-sha256: ([0-9a-f]{64})$", lock.read_text(encoding="utf-8"), re.M)
    assert recorded, f"{lock.name} has no lock-inputs line: regenerate it with `python3 dev.py lock`"
    assert recorded.group(1) == _dev_module().lock_inputs_digest(), (
        f"{lock.name} is stale: pyproject.toml's dependencies changed; run `python3 dev.py lock` and commit"
    )


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=["runtime", "dev"])
def test_every_pin_carries_hashes(lock: Path) -> None:
    text = lock.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9._-]+==)", text)
    pinned = [b for b in blocks if PIN_RE.match(b)]
    assert pinned
    for block in pinned:
        assert "--hash=sha256:" in block, f"no hash for {block.splitlines()[0]}"


def test_locks_satisfy_pyproject_and_agree() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    for raw in project["dependencies"]:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in runtime, f"{req.name} is missing from function/requirements.txt"
        assert req.specifier.contains(runtime[name], prereleases=True), f"{req.name}=={runtime[name]} breaks {req}"
    for raw in project["optional-dependencies"]["test"]:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in dev and req.specifier.contains(dev[name], prereleases=True), f"{req} not in the dev lock"
    # One resolution: every package of the runtime lock has the same version in the dev lock.
    assert {n: v for n, v in dev.items() if n in runtime} == runtime


def test_dev_tools_are_pinned_exactly() -> None:
    import tomllib

    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]["test"]
    exact = {canonicalize_name(Requirement(r).name) for r in test_extra if "==" in r}
    assert {"ruff", "mypy"} <= exact
    checkov = (ROOT / "infra" / "checkov" / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^checkov==\S+", checkov, re.M)


def test_docker_image_installs_the_runtime_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r function/requirements.txt" in dockerfile
    assert "--no-deps" in dockerfile
