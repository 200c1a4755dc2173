"""Run real `terraform init/validate/plan` offline on a copy of infra/, against the stand-in provider.

Each run copies infra/ into a temporary folder (so .terraform/ and state never land in the
repository), overrides the GCS backend with a local one, and plans twice: the first-ever plan
(empty state) and a steady-state plan (state synthesized by tfstub/state.py from the previous
plan, repeated until a plan shows no change). Plans are written as ONE-line JSON, as the
pipeline gives them to terraform-compliance.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "tfstub"))
import provider  # noqa: E402
import tooling  # noqa: E402

BACKEND_OVERRIDE = 'terraform {\n  backend "local" {\n    path = "terraform.tfstate"\n  }\n}\n'
MAX_ROUNDS = 4


@dataclass
class Plans:
    first: Path
    steady: Path
    rounds: int


def terraform_env() -> dict[str, str]:
    env = tooling.tool_env()
    env.update(TF_CLI_CONFIG_FILE=str(provider.cli_config()), TF_DISABLE_PLUGIN_TLS="1")
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return env


def plan_binary() -> str:
    """terraform >= 1.9 from PATH; without one (no registry ships it) these tests cannot run here: skipped, loudly."""
    import pytest

    try:
        return tooling.terraform_plan_binary()
    except RuntimeError as exc:
        pytest.skip(str(exc))


def terraform(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [plan_binary(), *args, "-no-color"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=terraform_env(),
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"terraform {' '.join(args)} failed in {workdir}:\n{result.stdout[-3000:]}{result.stderr}")
    return result


def copy_infra(dest: Path, source: Path = tooling.INFRA_DIR) -> Path:
    shutil.copytree(source, dest / "infra", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "__pycache__"))
    return dest / "infra"


def validate(env_dir: Path) -> subprocess.CompletedProcess[str]:
    """`terraform init -backend=false` then `terraform validate` (the result, unchecked)."""
    terraform(env_dir, "init", "-backend=false", "-input=false")
    return terraform(env_dir, "validate", check=False)


def _plan(env_dir: Path, name: str, tf_vars: Sequence[str] = ()) -> tuple[Path, dict[str, Any]]:
    terraform(env_dir, "plan", "-input=false", "-lock=false", *(f"-var={v}" for v in tf_vars), f"-out={name}.bin")
    shown = terraform(env_dir, "show", "-json", f"{name}.bin").stdout
    doc = json.loads(shown)
    path = env_dir / f"{name}.json"
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path, doc


def changed(doc: dict[str, Any]) -> list[str]:
    quiet = (["no-op"], ["read"])
    return [c["address"] for c in doc.get("resource_changes", []) if c["change"]["actions"] not in quiet]


def plan_twice(env_dir: Path, tf_vars: Sequence[str] = ()) -> Plans:
    """First-ever plan and the steady-state plan of one environment root (already validated), with `-var`s."""
    (env_dir / "backend_override.tf").write_text(BACKEND_OVERRIDE)
    terraform(env_dir, "init", "-input=false", "-reconfigure")
    first, doc = _plan(env_dir, "first", tf_vars)
    python = tooling.tfstub_python()
    schema = provider.schema_file()
    previous = first
    for round_no in range(1, MAX_ROUNDS + 1):
        state = subprocess.run(
            [python, str(HERE / "tfstub" / "state.py"), str(schema), str(previous)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        (env_dir / "terraform.tfstate").write_text(state)
        path, doc = _plan(env_dir, f"round{round_no}", tf_vars)
        previous = path
        if not changed(doc):
            return Plans(first=first, steady=path, rounds=round_no)
    raise AssertionError(f"no steady state after {MAX_ROUNDS} rounds; still changing: {changed(doc)}")
