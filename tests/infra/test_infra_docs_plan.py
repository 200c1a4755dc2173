"""The Terraform the docs show plans cleanly offline: tfvars written exactly from the docs, and the guide's options."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import terraform_run
import tooling

pytestmark = pytest.mark.infra
ROOT = tooling.REPO_ROOT
DOCS = [ROOT / "README.md", ROOT / "infra" / "README.md"]


def hcl_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for index, match in enumerate(re.finditer(r"^( *)```hcl\n(.*?)^\1```", text, re.S | re.M)):
            body = "\n".join(line[len(match.group(1)) :] for line in match.group(2).splitlines())
            blocks.append((f"{doc.relative_to(ROOT).as_posix()}#{index}", body))
    return blocks


BLOCKS = hcl_blocks()


def _plan_with(tmp_path: Path, tfvars: str) -> dict:
    infra = terraform_run.copy_infra(tmp_path)
    env_dir = infra / "envs" / "dev"
    (env_dir / "terraform.tfvars").write_text(tfvars)
    (env_dir / "backend_override.tf").write_text(terraform_run.BACKEND_OVERRIDE)
    terraform_run.terraform(env_dir, "init", "-input=false", "-reconfigure")
    terraform_run.terraform(env_dir, "plan", "-input=false", "-lock=false", "-out=docs.bin")
    return json.loads(terraform_run.terraform(env_dir, "show", "-json", "docs.bin").stdout)


def _planned(doc: dict, resource_type: str) -> list[dict]:
    return [c for c in doc["resource_changes"] if c["type"] == resource_type]


def test_the_docs_show_tfvars() -> None:
    assert any(name.startswith("README.md") for name, _ in BLOCKS)


@pytest.mark.parametrize(("name", "body"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_tfvars_from_the_docs_plan_cleanly(name: str, body: str, tmp_path: Path) -> None:
    doc = _plan_with(tmp_path, body + "\n")
    services = _planned(doc, "google_cloud_run_v2_service")
    assert services and services[0]["change"]["actions"] == ["create"], name


def test_secret_replication_and_ids_of_a_second_environment(tmp_path: Path) -> None:
    committed = (tooling.INFRA_DIR / "envs" / "dev" / "terraform.tfvars").read_text()
    extra = (
        'secret_replica_locations = ["europe-west1", "europe-west4"]\n'
        'secret_ids = { openai = "imagegen-staging-openai-api-key" }\n'
    )
    doc = _plan_with(tmp_path, committed + extra)
    secrets = {
        c["change"]["after"]["secret_id"]: c["change"]["after"] for c in _planned(doc, "google_secret_manager_secret")
    }
    assert "imagegen-staging-openai-api-key" in secrets and "imagegen-openai-api-key" not in secrets
    replication = secrets["imagegen-staging-openai-api-key"]["replication"][0]
    assert replication["auto"] == []
    locations = [r["location"] for r in replication["user_managed"][0]["replicas"]]
    assert locations == ["europe-west1", "europe-west4"]


def test_pipeline_backend_bucket_and_tf_state_bucket_agree() -> None:
    """init's backend bucket and plan's tf_state_bucket come from the one substitution, so they cannot differ."""
    steps = {s["id"]: s for s in yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]}
    assert "-backend-config=bucket=${_TF_STATE_BUCKET}" in steps["tf-init"]["args"]
    assert "-var=tf_state_bucket=${_TF_STATE_BUCKET}" in steps["tf-plan"]["args"]
