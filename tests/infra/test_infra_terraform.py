"""Real terraform init/validate/plan of every infra/envs root, offline, and both compliance passes on them.

The Google provider is the schema-only stand-in (tests/infra/tfstub), installed through a
filesystem mirror as the pinned version, so Terraform itself checks every argument, block
shape, type, reference, variable validation and precondition. Each environment is planned
twice: the first-ever plan (empty state) and a steady-state plan (synthetic state, no change).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import terraform_run
import tooling

pytestmark = pytest.mark.infra

ENVS = sorted(p.name for p in (tooling.INFRA_DIR / "envs").iterdir() if (p / "main.tf").exists())
FEATURES = tooling.INFRA_DIR / "compliance"


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> dict[str, terraform_run.Plans]:
    infra = terraform_run.copy_infra(tmp_path_factory.mktemp("tf"))

    def run(env: str) -> terraform_run.Plans:
        env_dir = infra / "envs" / env
        result = terraform_run.validate(env_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        return terraform_run.plan_twice(env_dir)

    terraform_run.provider.cli_config()  # build caches once, before the environments run side by side
    with ThreadPoolExecutor(max_workers=len(ENVS)) as pool:
        return dict(zip(ENVS, pool.map(run, ENVS), strict=True))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_environment_is_planned(planned):
    assert ENVS == ["dev", "prod"]
    for env, plans in planned.items():
        first = _load(plans.first)
        creates = [c for c in first["resource_changes"] if c["change"]["actions"] == ["create"]]
        assert len(creates) > 30, f"{env}: {len(creates)} creates"
        assert first["configuration"]["provider_config"]["google"]["version_constraint"] == "7.31.0"
        service = next(c for c in creates if c["type"] == "google_cloud_run_v2_service")
        # computed attributes are unknown on a first plan, never invented
        assert service["change"]["after_unknown"]["uri"] is True
        assert "uri" not in service["change"]["after"]
        steady = _load(plans.steady)
        assert terraform_run.changed(steady) == [], env
        assert plans.steady.read_text().count("\n") == 0


def test_first_plan_has_members_known_only_after_apply(planned):
    """The case the features used to fail on: bindings for service accounts created in the same plan."""
    first = _load(planned["dev"].first)
    unknown = [c["address"] for c in first["resource_changes"] if c["change"]["after_unknown"].get("member") is True]
    assert any("build_invoker" in a for a in unknown), unknown


@pytest.mark.parametrize("which", ["first", "steady"])
@pytest.mark.parametrize("env", ENVS)
def test_compliance_features_hold(planned, env, which):
    plan = getattr(planned[env], which)
    result = subprocess.run(
        [tooling.terraform_compliance_binary(), "--no-ansi", "-f", str(FEATURES), "-p", str(plan)],
        capture_output=True,
        text=True,
        env=tooling.tool_env(),
        timeout=600,
        check=False,
    )
    summary = [line for line in result.stdout.splitlines() if " scenarios (" in line]
    assert result.returncode == 0 and summary and "failed" not in summary[-1], result.stdout[-4000:]


@pytest.mark.parametrize("which", ["first", "steady"])
@pytest.mark.parametrize("env", ENVS)
def test_plan_checks_hold(planned, env, which):
    plan = getattr(planned[env], which)
    result = subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(plan)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_plan_checks_refuse_an_unknown_member_that_is_not_a_service_account_here(planned, tmp_path):
    doc = _load(planned["dev"].first)
    module = doc["configuration"]["root_module"]["module_calls"]["imagegen"]["module"]
    address = "google_cloud_run_v2_service_iam_member.build_invoker"
    invoker = next(r for r in module["resources"] if r["address"] == address)
    invoker["expressions"]["member"]["references"] = ["google_cloud_run_v2_service.this.uri"]
    tampered = tmp_path / "plan.json"
    tampered.write_text(json.dumps(doc))
    result = subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(tampered)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and "build_invoker" in result.stderr, result.stderr


def _service_env(doc: dict) -> dict[str, str]:
    resources = doc["planned_values"]["root_module"]["child_modules"][0]["resources"]
    service = next(r for r in resources if r["type"] == "google_cloud_run_v2_service")
    return {e["name"]: e.get("value") for e in service["values"]["template"][0]["containers"][0]["env"]}


def test_google_oauth_mode_passes_the_client_id_and_may_be_public(tmp_path):
    infra = terraform_run.copy_infra(tmp_path)
    env_dir = infra / "envs" / "dev"
    overrides = env_dir / "oauth.auto.tfvars"
    overrides.write_text(
        'auth_mode = "google-oauth,bearer"\nallow_public_invoker = true\n'
        'oauth_client_id = "123456789012-abc123.apps.googleusercontent.com"\n'
    )
    assert terraform_run.validate(env_dir).returncode == 0
    (env_dir / "backend_override.tf").write_text(terraform_run.BACKEND_OVERRIDE)
    terraform_run.terraform(env_dir, "init", "-input=false", "-reconfigure")
    path, doc = terraform_run._plan(env_dir, "oauth")
    env = _service_env(doc)
    assert env["IMAGEGEN_AUTH"] == "google-oauth,bearer"
    assert env["IMAGEGEN_OAUTH_CLIENT_ID"] == "123456789012-abc123.apps.googleusercontent.com"
    assert env["IMAGEGEN_IAM_CLOUD_RUN_ENFORCED"] == "false"
    changes = {c["address"] for c in doc["resource_changes"]}
    assert "module.imagegen.google_cloud_run_v2_service_iam_member.public_invoker[0]" in changes
    checks = subprocess.run(
        [sys.executable, str(FEATURES / "plan_checks.py"), str(path)], capture_output=True, text=True
    )
    assert checks.returncode == 0, checks.stderr

    for tfvars, message in (
        ('auth_mode = "google-oauth"\n', "needs oauth_client_id"),
        ('auth_mode = "iam,bearer"\nallow_public_invoker = true\n', "never public"),
        ('auth_mode = "bearer,bearer"\n', "without repeats"),
        ('auth_mode = "none,bearer"\n', "must be"),
        ('auth_mode = "iam"\noauth_client_id = "not-a-client"\n', "apps.googleusercontent.com"),
    ):
        overrides.write_text(tfvars)
        result = terraform_run.terraform(env_dir, "plan", "-input=false", "-lock=false", check=False)
        assert result.returncode != 0, tfvars
        assert message in " ".join((result.stdout + result.stderr).split()), result.stdout + result.stderr


# Each seeded mutation of the module: (file, text, replacement, an error Terraform must print).
NOT_EXPECTED = 'An argument named "{}" is not expected here'
SEEDED = {
    "misspelt_argument": ("main.tf", "  display_name = ", "  display_nam = ", NOT_EXPECTED.format("display_nam")),
    "missing_required_argument": ("run.tf", "  location", "  # location", 'The argument "location" is required'),
    "wrong_block_shape": ("run.tf", "    scaling {", "    scaling = {", NOT_EXPECTED.format("scaling")),
}


@pytest.mark.parametrize("case", sorted(SEEDED))
def test_a_seeded_broken_module_fails_validate(tmp_path, case):
    file, old, new, message = SEEDED[case]
    infra = terraform_run.copy_infra(tmp_path)
    target = infra / "modules" / "imagegen_service" / file
    text = target.read_text()
    assert old in text, f"seed {case} no longer applies to {file}"
    target.write_text(text.replace(old, new, 1))
    result = terraform_run.validate(infra / "envs" / "dev")
    assert result.returncode != 0, f"{case} validated:\n{result.stdout}"
    assert message in " ".join((result.stdout + result.stderr).split()), result.stdout + result.stderr


def test_the_stand_in_refuses_to_apply(tmp_path):
    env_dir = terraform_run.copy_infra(tmp_path) / "envs" / "dev"
    (env_dir / "backend_override.tf").write_text(terraform_run.BACKEND_OVERRIDE)
    terraform_run.terraform(env_dir, "init", "-input=false")
    target = "module.imagegen.google_service_account.runtime"
    result = terraform_run.terraform(
        env_dir, "apply", "-auto-approve", "-input=false", "-lock=false", f"-target={target}", check=False
    )
    assert result.returncode != 0
    assert "apply refused" in result.stdout + result.stderr, result.stdout[-2000:] + result.stderr
    assert "never changes a cloud" in " ".join((result.stdout + result.stderr).split())
